//! `inventory.get`: one product, read from KV (always current).

use oms_handlers::contract::{self, GetProduct, Product};
use oms_handlers::model::product_key;
use oms_handlers::{run, Ctx, Problem};

fn main() {
    run(&contract::INVENTORY_GET, get)
}

async fn get(ctx: Ctx, req: GetProduct) -> Result<Product, Problem> {
    match ctx
        .store
        .get::<Product>(&product_key(&req.product_id))
        .await?
    {
        Some(product) => Ok(product.value),
        None => Err(Problem::not_found(format!(
            "product {} not found",
            req.product_id
        ))),
    }
}
