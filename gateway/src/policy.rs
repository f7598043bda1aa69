//! Who may do what, per route.
//!
//! Operations are named here by their contract entry; any operation with a
//! REST route that is not named is staff only, so a new route is closed
//! until someone opens it. A customer is confined to its own orders: the
//! gateway fills in or checks `customerId` on a create or a list, reads the
//! order (over `orders.get`) before a cancel, and answers another's order
//! as not found, exactly as a missing one, so no id's existence leaks.

use crate::auth::{self, Caller};
use crate::payload::Rules;
use oms_runtime::contract::{self, Spec};
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

const RULES: &[(&Spec, Access)] = &[
    (&contract::INVENTORY_GET.spec, Access::AnyRole),
    (&contract::INVENTORY_LIST.spec, Access::AnyRole),
    (&contract::INVENTORY_CHECK.spec, Access::AnyRole),
    (&contract::ORDERS_CREATE.spec, Access::Orders(Own::Create)),
    (&contract::ORDERS_GET.spec, Access::Orders(Own::Read)),
    (&contract::ORDERS_LIST.spec, Access::Orders(Own::List)),
    (
        &contract::ORDERS_UPDATE_STATUS.spec,
        Access::Orders(Own::Cancel),
    ),
];

pub fn for_operation(op: &Spec) -> Access {
    RULES
        .iter()
        .find(|(o, _)| o.service == op.service)
        .map_or(Access::Staff, |(_, access)| *access)
}

/// What an allowed caller's request must be held to. (Its idempotency keys
/// are its own too: the handler scopes them by `Oms-Principal`.)
#[derive(Debug, Default, Clone, Copy)]
pub struct Grant<'c> {
    /// A customer's `sub`, with what it may do.
    pub customer: Option<(&'c str, Own)>,
}

impl<'c> Grant<'c> {
    pub fn rules(&self) -> Rules<'c> {
        let owner = match self.customer {
            Some((sub, Own::Create | Own::List)) => Some(("customerId", sub)),
            _ => None,
        };
        Rules { owner }
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
    let grant = Grant { customer: None };
    if caller.is_staff() || access == Access::Open {
        return Ok(grant);
    }
    let customer = caller.customer();
    match (access, customer) {
        (Access::AnyRole, Some(_)) => Ok(grant),
        (Access::Orders(own), Some(sub)) => Ok(Grant {
            customer: Some((sub, own)),
        }),
        (_, Some(_)) => Err(auth::forbidden("this route is for staff only")),
        (_, None) => Err(auth::forbidden(
            "the token has neither the staff nor the customer role",
        )),
    }
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
}
