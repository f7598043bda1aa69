//! Who may do what (DESIGN §10.2), per route.
//!
//! Operations are named here by their contract entry; any operation with a
//! REST route that is not named is staff only, so a new route is closed
//! until someone opens it. A customer is confined to its own orders: the
//! gateway fills in or checks `customerId` on a create or a list, reads the
//! order (over `orders.get`) before a cancel, and answers another's order
//! as not found, exactly as a missing one, so no id's existence leaks.

use crate::auth::{self, Caller};
use crate::payload::Rules;
use oms_runtime::contract::{self, Operation};
use oms_runtime::Problem;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Access {
    /// No token needed: health, readiness, the OpenAPI document.
    Open,
    /// Staff only.
    Staff,
    /// Staff or customer: reading stock.
    AnyRole,
    /// Staff, or a customer on its own orders only.
    Orders(Own),
}

/// What a customer may do with orders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Own {
    /// Create for itself: `customerId` absent (then its `sub`) or its `sub`.
    Create,
    /// Read its own; another's is a 404.
    Read,
    /// List its own: `customerId` absent (then its `sub`) or its `sub`.
    List,
    /// Cancel its own; another status is a 403, another's order a 404.
    Cancel,
}

const RULES: &[(&Operation, Access)] = &[
    (&contract::INVENTORY_GET, Access::AnyRole),
    (&contract::INVENTORY_LIST, Access::AnyRole),
    (&contract::INVENTORY_CHECK, Access::AnyRole),
    (&contract::ORDERS_CREATE, Access::Orders(Own::Create)),
    (&contract::ORDERS_GET, Access::Orders(Own::Read)),
    (&contract::ORDERS_LIST, Access::Orders(Own::List)),
    (&contract::ORDERS_UPDATE_STATUS, Access::Orders(Own::Cancel)),
];

pub fn for_operation(op: &Operation) -> Access {
    RULES
        .iter()
        .find(|(o, _)| o.service == op.service)
        .map_or(Access::Staff, |(_, access)| *access)
}

/// What an allowed caller's request must be held to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Grant<'c> {
    /// The principal its idempotency keys belong to (none with auth off).
    pub principal: Option<&'c str>,
    /// A customer's `sub`, with what it may do.
    pub customer: Option<(&'c str, Own)>,
}

impl<'c> Grant<'c> {
    pub fn rules(&self) -> Rules<'c> {
        let owner = match self.customer {
            Some((sub, Own::Create | Own::List)) => Some(("customerId", sub)),
            _ => None,
        };
        Rules {
            key_scope: self.principal,
            owner,
        }
    }

    /// The customer whose order must be read before the request is sent;
    /// once it is its own, the only status it may set is `CANCELLED` (so
    /// another's order is a 404 whatever the status asked).
    pub fn read_first(&self) -> Option<&'c str> {
        match self.customer {
            Some((sub, Own::Cancel)) => Some(sub),
            _ => None,
        }
    }

    /// The customer who must own the order in the reply.
    pub fn owns_reply(&self) -> Option<&'c str> {
        match self.customer {
            Some((sub, Own::Read)) => Some(sub),
            _ => None,
        }
    }
}

/// Whether `caller` may use a route with `access`; a 403 when not.
pub fn decide(access: Access, caller: &Caller) -> Result<Grant<'_>, Problem> {
    let grant = Grant {
        principal: caller.principal().map(|p| p.sub.as_str()),
        customer: None,
    };
    if caller.is_staff() || access == Access::Open {
        return Ok(grant);
    }
    let customer = caller.customer();
    match (access, customer) {
        (Access::AnyRole, Some(_)) => Ok(grant),
        (Access::Orders(own), Some(sub)) => Ok(Grant {
            customer: Some((sub, own)),
            ..grant
        }),
        (_, Some(_)) => Err(auth::forbidden("this route is for staff only")),
        (_, None) => Err(auth::forbidden(
            "the token has neither the staff nor the customer role",
        )),
    }
}

/// The idempotency key the handler sees: 64 hex digits of
/// SHA-256(`sub` 0x00 `key`). Two principals' same key name two orders;
/// a retry by the same one names the same order. It still fits the
/// schema's key pattern, and `sub` is visible ASCII, so the 0x00 cannot
/// be part of either.
pub fn scoped_key(sub: &str, key: &str) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(sub.as_bytes());
    hash.update([0u8]);
    hash.update(key.as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;

    fn caller(sub: &str, staff: bool, customer: bool) -> Caller {
        Caller::Principal(Principal {
            sub: sub.into(),
            staff,
            customer,
        })
    }

    #[test]
    fn unnamed_operations_are_staff_only() {
        assert_eq!(for_operation(&contract::INVENTORY_ADD_STOCK), Access::Staff);
        assert_eq!(for_operation(&contract::INVENTORY_ADJUST), Access::Staff);
        assert_eq!(for_operation(&contract::INVENTORY_RESERVE), Access::Staff);
        assert_eq!(for_operation(&contract::INVENTORY_GET), Access::AnyRole);
    }

    #[test]
    fn customers_are_confined() {
        let customer = caller("c-1", false, true);
        assert_eq!(decide(Access::Staff, &customer).unwrap_err().status, 403);
        let create = decide(Access::Orders(Own::Create), &customer).unwrap();
        assert_eq!(create.rules().owner, Some(("customerId", "c-1")));
        let cancel = decide(Access::Orders(Own::Cancel), &customer).unwrap();
        assert_eq!(cancel.read_first(), Some("c-1"));
        assert_eq!(cancel.rules().owner, None);
        let nobody = caller("x", false, false);
        assert_eq!(decide(Access::AnyRole, &nobody).unwrap_err().status, 403);
        assert!(decide(Access::Open, &nobody).is_ok());
        let staff_customer = caller("s", true, true);
        let both = decide(Access::Orders(Own::Read), &staff_customer).unwrap();
        assert!(both.customer.is_none(), "staff wins");
        assert!(decide(Access::Staff, &Caller::Anyone).is_ok());
    }

    #[test]
    fn keys_are_scoped_per_principal() {
        let a = scoped_key("alice", "cart-1");
        assert_eq!(a, scoped_key("alice", "cart-1"));
        assert_ne!(a, scoped_key("bob", "cart-1"));
        assert_ne!(scoped_key("a", "bc"), scoped_key("ab", "c"));
        assert_eq!(a.len(), 64);
    }
}
