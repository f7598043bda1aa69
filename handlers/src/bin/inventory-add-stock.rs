//! `inventory.add-stock`: adds units to a product (creating it on first use)
//! and sets its price. With a `requestId`, a retry is applied once: the
//! product change and the request's record are written in one atomic batch.
//! A request id is its principal's (`Oms-Principal`), as idempotency keys are.
//! The product records the change (reason `add-stock`, `ref` the
//! `requestId`, the actor) for its ledger entry.

use oms_handlers::contract::{self, AddStock, Part, Product, Reason};
use oms_handlers::model::{product_key, stock_request_key};
use oms_handlers::{run, Ctx, Problem, Write};
use oms_runtime::time;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a `requestId` is remembered.
const REQUEST_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a `requestId` remembers: the request, and the answer it got.
#[derive(Serialize, Deserialize)]
struct Applied {
    request: AddStock,
    product: Product,
}

fn main() {
    run(&contract::INVENTORY_ADD_STOCK, add_stock)
}

async fn add_stock(ctx: Ctx, req: AddStock) -> Result<Product, Problem> {
    ctx.staff_only()?;
    let key = product_key(&req.product_id);
    let Some(request_id) = &req.request_id else {
        let product = ctx
            .store
            .modify(&key, |current| added(current, &req, ctx.actor()))
            .await?;
        return Ok(product.value.at(product.revision));
    };
    let principal = ctx.principal.as_ref().map(|p| p.sub.as_str());
    let record_key = stock_request_key(principal, request_id);
    loop {
        let seen = ctx.store.read::<Applied>(&record_key).await?;
        let seen_revision = seen.revision;
        if let Some(seen) = seen.value {
            return if seen.request == req {
                // Written in one batch right after the product's revision.
                Ok(seen.product.at(seen_revision - 1))
            } else {
                Err(Problem::unprocessable(
                    "request-id-reused",
                    format!("requestId {request_id} was used for a different request"),
                ))
            };
        }
        let current = ctx.store.read::<Product>(&key).await?;
        let product = added(current.value, &req, ctx.actor())?;
        let record = Applied {
            request: req.clone(),
            product: product.clone(),
        };
        let mut remember = Write::json(&record_key, &record, seen.revision);
        remember.ttl = Some(REQUEST_TTL);
        match ctx
            .store
            .apply(&[Write::json(&key, &product, current.revision), remember])
            .await
        {
            // The record is the batch's second message, the product its first.
            Ok(last) => return Ok(product.at(last - 1)),
            // Someone changed the product, or the same request won first: look again.
            Err(oms_runtime::StoreError::Conflict) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Most units a product may count (available + reserved): the largest
/// integer a JSON number carries exactly.
const MAX_UNITS: u64 = 1 << 53;

fn added(
    current: Option<Product>,
    req: &AddStock,
    actor: Option<&str>,
) -> Result<Product, Problem> {
    let now = time::now();
    let part =
        Part::new(Reason::AddStock, req.request_id.as_deref(), actor).moved(req.quantity as i64, 0);
    let mut product = match current {
        Some(product) => {
            let quantity = product.quantity + req.quantity;
            if quantity + product.reserved > MAX_UNITS {
                return Err(Problem::conflict(
                    "stock-limit",
                    format!("{} would count more than {MAX_UNITS} units", req.product_id),
                ));
            }
            Product {
                quantity,
                price: req.price,
                updated_at: now,
                ..product
            }
        }
        None => Product {
            product_id: req.product_id.clone(),
            quantity: req.quantity,
            reserved: 0,
            price: req.price,
            created_at: now.clone(),
            updated_at: now,
            low_stock_threshold: None,
            last_change: None,
            revision: None,
        },
    };
    product.record(part, true);
    Ok(product)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_handlers::contract::Cents;

    fn request(quantity: u64) -> AddStock {
        AddStock {
            product_id: "A".into(),
            quantity,
            price: Cents(100),
            request_id: None,
        }
    }

    #[test]
    fn adds_up_to_the_exact_limit_and_refuses_past_it() {
        let first = added(None, &request(1_000), None).unwrap();
        assert_eq!((first.quantity, first.reserved), (1_000, 0));
        let mut full = first.clone();
        full.quantity = MAX_UNITS - 1_000;
        full.reserved = 999;
        assert_eq!(
            added(Some(full.clone()), &request(1), None)
                .unwrap()
                .quantity,
            MAX_UNITS - 999
        );
        let refused = added(Some(full), &request(2), None).unwrap_err();
        assert_eq!(
            (refused.status, refused.kind.as_str()),
            (409, "/problems/stock-limit")
        );
    }
}
