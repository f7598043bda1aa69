//! `orders.get`: one order, read from KV (always current).

use oms_handlers::contract::{self, GetOrder, Order};
use oms_handlers::model::order_key;
use oms_handlers::{run, Ctx, Problem};

fn main() {
    run(&contract::ORDERS_GET, get)
}

async fn get(ctx: Ctx, req: GetOrder) -> Result<Order, Problem> {
    match ctx.store.get::<Order>(&order_key(&req.id)).await? {
        // A customer sees its own orders; another's is "not found", so
        // their existence does not leak.
        Some(order) if ctx.customer().is_none_or(|c| c == order.value.customer_id) => {
            Ok(order.value.at(order.revision))
        }
        _ => Err(Problem::not_found(format!("order {} not found", req.id))),
    }
}
