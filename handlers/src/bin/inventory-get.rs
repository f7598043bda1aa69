//! `inventory.get`: one product, read from KV (always current).

use oms_handlers::model::{product_key, Product};
use oms_handlers::{contract, run, Ctx, Problem};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Get {
    product_id: String,
}

fn main() {
    run(&contract::INVENTORY_GET, get)
}

async fn get(ctx: Ctx, req: Get) -> Result<Product, Problem> {
    match ctx
        .store
        .get::<Product>(&product_key(&req.product_id))
        .await?
    {
        Some(product) => Ok(product.value.at(product.revision)),
        None => Err(Problem::not_found(format!(
            "product {} not found",
            req.product_id
        ))),
    }
}
