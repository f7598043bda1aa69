//! `orders.list`: orders newest first, filtered by `status` and/or
//! `customerId`, `limit` at a time, from this instance's local index (see
//! `read_model`). Pass `nextCursor` back as `cursor` for the next page. A
//! page also ends before its reply would pass the server's `max_payload`.

use oms_handlers::contract::{self, ListOrders, Status};
use oms_handlers::read_model::{page_bytes, OrderFilter, OrderIndex, RawPage};
use oms_handlers::{run_with, Ctx, Problem};

fn main() {
    let orders = |app: &std::sync::Arc<oms_runtime::App>| OrderIndex::follow(app.store.clone());
    run_with(&contract::ORDERS_LIST, orders, list)
}

async fn list(ctx: Ctx<OrderIndex>, req: ListOrders) -> Result<RawPage, Problem> {
    // A customer lists its own orders only.
    let customer_id = match (ctx.customer(), req.customer_id.as_deref()) {
        (Some(own), Some(asked)) if asked != own => {
            return Err(Problem::forbidden(format!(
                "{own} may list only its own orders"
            )))
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    let filter = OrderFilter {
        status: req.status.map(Status::as_str),
        customer_id,
    };
    let max_bytes = page_bytes(&ctx.client);
    let limit = req.limit.unwrap_or(100);
    ctx.state
        .page(&filter, req.cursor.as_deref(), limit, max_bytes)
}
