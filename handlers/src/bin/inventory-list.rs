//! `inventory.list`: products in productId order, `limit` at a time, from
//! this instance's local index (see `read_model`). `nextCursor` is the last
//! productId of the page; pass it as `cursor` for the next one. A page also
//! ends before its reply would pass the server's `max_payload`.

use oms_handlers::contract::{self, ListProducts};
use oms_handlers::read_model::{page_bytes, Mirror, RawPage};
use oms_handlers::{run_with, Ctx, Problem};

fn main() {
    let products = |app: &std::sync::Arc<oms_runtime::App>| {
        Mirror::follow(app.store.clone(), oms_handlers::model::PRODUCTS)
    };
    run_with(&contract::INVENTORY_LIST, products, list)
}

async fn list(ctx: Ctx<Mirror>, req: ListProducts) -> Result<RawPage, Problem> {
    let max_bytes = page_bytes(&ctx.client);
    ctx.state
        .page(req.cursor.as_deref(), req.limit.unwrap_or(100), max_bytes)
}
