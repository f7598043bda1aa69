//! Who is asking: a bearer JWT in `Authorization`, checked
//! against the configured keys, becomes a [`Principal`] with its roles.
//! With `OMS_AUTH=off` every request acts as staff, without an identity.
//!
//! A refusal is a 401 with `WWW-Authenticate: Bearer` (plus
//! `error="invalid_token"` when a token was sent, RFC 6750 §3) and a
//! problem body saying what was wrong with the token.

use crate::jwt::Keys;
use crate::respond::{self, Body};
use hyper::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Response};
use jsonwebtoken::errors::ErrorKind;
use oms_runtime::Problem;

/// NATS headers that carry the caller to the handler.
pub const PRINCIPAL_HEADER: &str = "Oms-Principal";
pub const ROLES_HEADER: &str = "Oms-Roles";

#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The token's `sub`: 1..128 visible ASCII characters, so it fits a
    /// NATS header and a `customerId` as it is.
    pub sub: String,
    pub staff: bool,
    pub customer: bool,
}

impl Principal {
    /// `staff,customer`, the roles the gateway knows, in that order.
    pub fn roles(&self) -> String {
        let mut roles = Vec::new();
        if self.staff {
            roles.push("staff");
        }
        if self.customer {
            roles.push("customer");
        }
        roles.join(",")
    }
}

/// The caller of a request that passed authentication.
#[derive(Debug, Clone)]
pub enum Caller {
    /// `OMS_AUTH=off`: acts as staff and names no one.
    Anyone,
    Principal(Principal),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Anyone => None,
            Caller::Principal(p) => Some(p),
        }
    }

    pub fn is_staff(&self) -> bool {
        self.principal().is_none_or(|p| p.staff)
    }

    /// The `sub` of a customer who is not also staff: the one confined to
    /// its own orders.
    pub fn customer(&self) -> Option<&str> {
        self.principal()
            .filter(|p| p.customer && !p.staff)
            .map(|p| p.sub.as_str())
    }
}

pub enum Auth {
    Off,
    Jwt(Keys),
}

/// Why a request was not authenticated.
#[derive(Debug)]
pub struct Rejection {
    pub token_sent: bool,
    pub detail: String,
}

impl Auth {
    pub fn is_off(&self) -> bool {
        matches!(self, Auth::Off)
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Rejection> {
        let keys = match self {
            Auth::Off => return Ok(Caller::Anyone),
            Auth::Jwt(keys) => keys,
        };
        let refuse = |token_sent, detail: &str| Rejection {
            token_sent,
            detail: detail.to_string(),
        };
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(refuse(false, "a bearer token is required"));
        };
        let value = value.to_str().unwrap_or("");
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(refuse(
                    false,
                    "the Authorization header must be `Bearer <token>`",
                ))
            }
        };
        let claims = keys
            .verify(token)
            .map_err(|kind| refuse(true, &why(kind)))?;
        if claims.sub.is_empty()
            || claims.sub.len() > 128
            || !claims.sub.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(refuse(
                true,
                "the token's sub must be 1..128 visible ASCII characters",
            ));
        }
        let has = |role: &str| claims.roles.iter().any(|r| r == role);
        Ok(Caller::Principal(Principal {
            staff: has("staff"),
            customer: has("customer"),
            sub: claims.sub,
        }))
    }
}

fn why(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token is meant for another audience (aud)".into(),
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token lacks the claim {claim}"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's claim {claim} is malformed"),
        _ => "the token is malformed".into(),
    }
}

/// 401 with its `WWW-Authenticate` challenge.
pub fn unauthorized(rejection: &Rejection) -> Response<Body> {
    let problem = Problem::new(
        401,
        "unauthorized",
        "Unauthorized",
        rejection.detail.clone(),
    );
    let mut response = respond::problem(&problem);
    let challenge = if rejection.token_sent {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// 403: authenticated, but this caller may not do this.
pub fn forbidden(detail: impl Into<String>) -> Problem {
    Problem::new(403, "forbidden", "Forbidden", detail)
}
