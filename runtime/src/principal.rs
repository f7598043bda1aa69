//! Who asked: the gateway forwards the caller it
//! authenticated as `Oms-Principal` and `Oms-Roles` headers (and drops any a
//! client sent). A request without them comes from a NATS user whose
//! subject permissions already decided what it may do; one with them is
//! held to that principal's role by the handler too (defence in depth).

use async_nats::HeaderMap;

pub const PRINCIPAL_HEADER: &str = "Oms-Principal";
pub const ROLES_HEADER: &str = "Oms-Roles";
/// On whose behalf an operation calls another (see `Ctx::actor`): who the
/// ledger names, never a role. The gateway drops it from clients like every
/// `Oms-*` header.
pub const ACTOR_HEADER: &str = "Oms-Actor";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub sub: String,
    pub roles: Vec<String>,
}

impl Principal {
    /// The principal a request names, if it names one.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Option<Principal> {
        let headers = headers?;
        let sub = headers.get(PRINCIPAL_HEADER)?.as_str().trim();
        if sub.is_empty() {
            return None;
        }
        let roles = headers
            .get(ROLES_HEADER)
            .map(|v| {
                v.as_str()
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Some(Principal {
            sub: sub.to_string(),
            roles,
        })
    }

    pub fn is_staff(&self) -> bool {
        self.roles.iter().any(|r| r == "staff")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_principal_and_its_roles() {
        let mut headers = HeaderMap::new();
        assert_eq!(Principal::from_headers(Some(&headers)), None);
        headers.insert(PRINCIPAL_HEADER, "alice");
        headers.insert(ROLES_HEADER, "customer, staff");
        let alice = Principal::from_headers(Some(&headers)).unwrap();
        assert_eq!(alice.sub, "alice");
        assert!(alice.is_staff());
        headers.insert(ROLES_HEADER, "customer");
        assert!(!Principal::from_headers(Some(&headers)).unwrap().is_staff());
    }
}
