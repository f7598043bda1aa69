//! `orders.list`: orders newest first, filtered by `status` and/or
//! `customerId`, `limit` at a time, from this instance's local index (see
//! `read_model`). Pass `nextCursor` back as `cursor` for the next page.

use oms_handlers::contract::{self, ListOrders, Status};
use oms_handlers::read_model::{OrderFilter, OrderIndex, RawPage};
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
    ctx.state
        .page(&filter, req.cursor.as_deref(), req.limit.unwrap_or(100))
}
