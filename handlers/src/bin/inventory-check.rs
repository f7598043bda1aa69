//! `inventory.check`: is every item in stock right now? Reads only; an
//! unknown product counts as 0 available.

use futures::future::try_join_all;
use oms_handlers::contract::{self, Availability, Cents, Check, ItemAvailability, Product};
use oms_handlers::model::{check_distinct, product_key};
use oms_handlers::{run, Ctx, Problem};

fn main() {
    run(&contract::INVENTORY_CHECK, check)
}

async fn check(ctx: Ctx, req: Check) -> Result<Availability, Problem> {
    check_distinct(&req.items)?;
    let keys: Vec<_> = req
        .items
        .iter()
        .map(|i| product_key(&i.product_id))
        .collect();
    let products = try_join_all(keys.iter().map(|key| ctx.store.get::<Product>(key))).await?;
    let items: Vec<_> = req
        .items
        .into_iter()
        .zip(products)
        .map(|(item, product)| {
            let (quantity, price) =
                product.map_or((0, Cents(0)), |p| (p.value.quantity, p.value.price));
            ItemAvailability {
                sufficient: quantity >= item.quantity,
                product_id: item.product_id,
                requested: item.quantity,
                quantity,
                price,
            }
        })
        .collect();
    Ok(Availability {
        available: items.iter().all(|i| i.sufficient),
        items,
    })
}
