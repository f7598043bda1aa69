//! `inventory.get`: one product, read from KV (always current) — or, with
//! `at` (RFC 3339), as it was then: the product key's last revision stored
//! at or before that time, from the bucket's own history (one direct get,
//! `multi_last` up to the time). 404 if the product did not exist yet; 410
//! if its revisions of that time are older than the 64 the bucket keeps
//! (the ledger, `inventory.history`, still has every change).

use oms_handlers::contract::{self, GetProduct, Product};
use oms_handlers::model::product_key;
use oms_handlers::{run, Ctx, Problem};
use oms_runtime::{direct, time};
use serde_json::json;

fn main() {
    run(&contract::INVENTORY_GET, get)
}

async fn get(ctx: Ctx, req: GetProduct) -> Result<Product, Problem> {
    if let Some(at) = &req.at {
        let nanos = time::parse_rfc3339(at)
            .ok_or_else(|| Problem::invalid_field("/at", "at must be an RFC 3339 date-time"))?;
        return as_it_was(&ctx, &req.product_id, nanos).await;
    }
    match ctx
        .store
        .get::<Product>(&product_key(&req.product_id))
        .await?
    {
        Some(product) => Ok(product.value.at(product.revision)),
        None => Err(not_found(&req.product_id)),
    }
}

fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("product {id} not found"))
}

async fn as_it_was(ctx: &Ctx, id: &str, at: i128) -> Result<Product, Problem> {
    let stream = ctx.store.stream_name();
    let subject = format!("$KV.{}.{}", ctx.store.bucket, product_key(id));
    let unavailable = |why: String| {
        tracing::warn!(error = %why, "history read failed");
        Problem::unavailable("the store's history is unavailable")
    };
    let request = json!({"multi_last": [subject], "up_to_time": time::format_nanos(at)});
    let then = direct::batch(&ctx.client, &stream, &request)
        .await
        .map_err(unavailable)?;
    if let Some(revision) = then.into_iter().find(|m| m.subject == subject) {
        let deleted = revision.payload.is_empty() || revision.headers.get("KV-Operation").is_some();
        if deleted {
            return Err(not_found(id));
        }
        let product: Product = serde_json::from_slice(&revision.payload)
            .map_err(|e| Problem::internal(format!("stored {id} is not valid: {e}")))?;
        return Ok(product.at(revision.sequence));
    }
    // Nothing kept from then: not created yet, or older than what is kept.
    // The oldest kept revision tells: the product's first change is kept.
    let oldest = direct::one(
        &ctx.client,
        &stream,
        &json!({"seq": 1, "next_by_subj": subject}),
    )
    .await
    .map_err(unavailable)?;
    let Some(oldest) = oldest else {
        return Err(not_found(id));
    };
    let first: Option<Product> = serde_json::from_slice(&oldest.payload).ok();
    let created_here = first
        .as_ref()
        .and_then(|p| p.last_change.as_ref())
        .is_some_and(|c| c.seq == 1);
    if created_here {
        return Err(Problem::not_found(format!(
            "product {id} did not exist yet at {}",
            time::format_nanos(at)
        )));
    }
    Err(Problem::new(
        410,
        "history-gone",
        "Gone",
        format!(
            "the bucket keeps the last 64 revisions of product {id}; the oldest is from {}. \
             GET /inventory/{id}/history (inventory.history) has every change",
            first.map(|p| p.updated_at).unwrap_or_default()
        ),
    ))
}
