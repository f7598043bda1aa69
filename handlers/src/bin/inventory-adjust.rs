//! `inventory.adjust`: staff set a product's available count (`quantity`)
//! or change it (`delta`), saying why (`reason`, `note`), and may set its
//! `lowStockThreshold`. The change is recorded in the product (its ledger
//! entry says it) and written compare-and-set on the product's revision:
//! with `expectedRevision` (REST `If-Match`) another revision is a 412 and
//! nothing changes; without one a lost race is decided again on the new
//! counts. `reserved` is never touched: what open orders hold is theirs.
//! The available count never goes below 0 (409).

use oms_handlers::contract::{self, Adjust, Part, Product};
use oms_handlers::model::product_key;
use oms_handlers::{run, Ctx, Problem, Write};
use oms_runtime::{time, FieldError, StoreError};

const MAX_UNITS: u64 = 1 << 53;

fn main() {
    run(&contract::INVENTORY_ADJUST, adjust)
}

async fn adjust(ctx: Ctx, req: Adjust) -> Result<Product, Problem> {
    ctx.staff_only()?;
    check_one_of(&req)?;
    let key = product_key(&req.product_id);
    loop {
        let current = ctx.store.read::<Product>(&key).await?;
        let Some(product) = current.value else {
            return Err(Problem::not_found(format!(
                "product {} not found",
                req.product_id
            )));
        };
        if let Some(expected) = req.expected_revision {
            if expected != current.revision {
                return Err(stale(&req.product_id, expected, current.revision));
            }
        }
        let adjusted = adjusted(product, &req, ctx.actor())?;
        let write = Write::json(&key, &adjusted, current.revision);
        match ctx.store.apply(&[write]).await {
            Ok(revision) => return Ok(adjusted.at(revision)),
            Err(StoreError::Conflict) => {
                if let Some(expected) = req.expected_revision {
                    return Err(Problem::precondition_failed(format!(
                        "product {} was changed after revision {expected}; read it again",
                        req.product_id
                    )));
                }
                // Someone moved the counts: decide again on the new ones.
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// Exactly one of `quantity` and `delta`: a schema could say it only with
/// an error that points nowhere.
fn check_one_of(req: &Adjust) -> Result<(), Problem> {
    let error = |pointer: &str, message: &str| FieldError {
        pointer: pointer.into(),
        message: message.into(),
    };
    match (req.quantity, req.delta) {
        (Some(_), None) | (None, Some(_)) => Ok(()),
        (Some(_), Some(_)) => Err(Problem::bad_request(
            "give quantity or delta, not both",
            vec![
                error("/quantity", "quantity and delta exclude each other"),
                error("/delta", "quantity and delta exclude each other"),
            ],
        )),
        (None, None) => Err(Problem::bad_request(
            "quantity or delta is required",
            vec![
                error("/quantity", "quantity (the new count) or delta is required"),
                error("/delta", "delta (the change) or quantity is required"),
            ],
        )),
    }
}

/// The product after the adjustment, recording it; 409 below zero or past
/// the most units a product may count.
fn adjusted(product: Product, req: &Adjust, actor: Option<&str>) -> Result<Product, Problem> {
    let old = product.quantity;
    let new = match (req.quantity, req.delta) {
        (Some(quantity), _) => Some(quantity),
        (None, Some(delta)) => old.checked_add_signed(delta),
        (None, None) => unreachable!("checked"),
    };
    let Some(new) = new else {
        return Err(Problem::conflict(
            "negative-stock",
            format!(
                "{} has {old} available; a delta of {} would make it negative",
                req.product_id,
                req.delta.unwrap_or_default()
            ),
        )
        .with("available", old));
    };
    if new + product.reserved > MAX_UNITS {
        return Err(Problem::conflict(
            "stock-limit",
            format!("{} would count more than {MAX_UNITS} units", req.product_id),
        ));
    }
    let mut part = Part::new(req.reason, None, actor).moved(new as i64 - old as i64, 0);
    part.note = req.note.clone();
    let mut product = Product {
        quantity: new,
        low_stock_threshold: req.low_stock_threshold.or(product.low_stock_threshold),
        updated_at: time::now(),
        ..product
    };
    product.record(part, true);
    Ok(product)
}

fn stale(id: &str, expected: u64, current: u64) -> Problem {
    Problem::precondition_failed(format!(
        "product {id} is at revision {current}, not {expected}; read it again"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_handlers::contract::{Cents, Reason};

    fn product(quantity: u64, reserved: u64) -> Product {
        Product {
            product_id: "A".into(),
            quantity,
            reserved,
            price: Cents(1),
            ..Default::default()
        }
    }

    fn request(quantity: Option<u64>, delta: Option<i64>) -> Adjust {
        Adjust {
            product_id: "A".into(),
            quantity,
            delta,
            reason: Reason::Damaged,
            note: Some("dropped".into()),
            expected_revision: None,
            low_stock_threshold: Some(3),
        }
    }

    #[test]
    fn sets_or_moves_the_available_count_and_records_why() {
        let set = adjusted(product(10, 4), &request(Some(7), None), Some("sam")).unwrap();
        assert_eq!((set.quantity, set.reserved), (7, 4));
        assert_eq!(set.low_stock_threshold, Some(3));
        let change = set.last_change.unwrap();
        assert_eq!(
            (
                change.seq,
                change.part.quantity_delta,
                change.part.reserved_delta
            ),
            (1, -3, 0)
        );
        assert_eq!(change.part.reason, Reason::Damaged);
        assert_eq!(change.part.note.as_deref(), Some("dropped"));
        assert_eq!(change.part.actor.as_deref(), Some("sam"));
        let moved = adjusted(product(10, 0), &request(None, Some(-10)), None).unwrap();
        assert_eq!(moved.quantity, 0);
        let up = adjusted(product(10, 0), &request(None, Some(5)), None).unwrap();
        assert_eq!(up.quantity, 15);
    }

    #[test]
    fn never_below_zero_nor_past_the_limit() {
        let refused = adjusted(product(3, 9), &request(None, Some(-4)), None).unwrap_err();
        assert_eq!(
            (refused.status, refused.kind.as_str()),
            (409, "/problems/negative-stock")
        );
        let refused =
            adjusted(product(0, 2), &request(Some(MAX_UNITS - 1), None), None).unwrap_err();
        assert_eq!(refused.status, 409);
        assert!(adjusted(product(0, 1), &request(Some(MAX_UNITS - 1), None), None).is_ok());
    }

    #[test]
    fn exactly_one_of_quantity_and_delta() {
        let both = check_one_of(&request(Some(1), Some(1))).unwrap_err();
        assert_eq!(both.errors.len(), 2);
        assert_eq!(check_one_of(&request(None, None)).unwrap_err().status, 400);
        assert!(check_one_of(&request(None, Some(0))).is_ok());
    }
}
