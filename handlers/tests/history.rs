//! `inventory.history` and `inventory.get` with `at`: pages of
//! the ledger, newest first, that cover every entry once; a product as it
//! was at a time, 404 before it existed.

use serde_json::json;
use std::time::Duration;
use testkit::Stack;

const SERVICES: [&str; 4] = [
    "inventory-add-stock",
    "inventory-get",
    "inventory-adjust",
    "inventory-history",
];

/// Every page of `product`'s history at `limit`, as the seqs of its entries.
async fn walk(stack: &Stack, product: &str, limit: u64) -> Vec<Vec<u64>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = json!({"productId": product, "limit": limit});
        if let Some(cursor) = &cursor {
            request["cursor"] = cursor.clone().into();
        }
        let page = stack.request("inventory.history", &request).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() as u64 <= limit);
        assert!(items.iter().all(|e| e["productId"] == product));
        pages.push(items.iter().map(|e| e["seq"].as_u64().unwrap()).collect());
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return pages,
        }
        assert!(pages.len() < 1000, "endless paging");
    }
}

#[tokio::test]
async fn pages_cover_every_entry_once_newest_first() {
    let mut stack = Stack::start(&SERVICES).await;
    stack.spawn("inventory-ledger");
    // A's entries interleave with B's in the stream.
    for round in 0..60u64 {
        stack.add_stock("A", 1, 1.0).await;
        if round % 3 == 0 {
            stack.add_stock("B", 1, 1.0).await;
        }
    }
    let ledger = stack.quiet_ledger().await;
    let count_a = ledger.iter().filter(|e| e["productId"] == "A").count() as u64;
    assert_eq!(count_a, 60);
    for limit in [1, 7, 59, 60, 100] {
        let pages = walk(&stack, "A", limit).await;
        let all: Vec<u64> = pages.iter().flatten().copied().collect();
        assert_eq!(all, (1..=60).rev().collect::<Vec<_>>(), "limit {limit}");
        assert_eq!(pages.len() as u64, 60u64.div_ceil(limit), "limit {limit}");
    }
    let b: Vec<u64> = walk(&stack, "B", 3).await.into_iter().flatten().collect();
    assert_eq!(b, (1..=20).rev().collect::<Vec<_>>());

    // The newest entry is the current state.
    let page = stack
        .request("inventory.history", &json!({"productId": "A", "limit": 1}))
        .await;
    let newest = &page.body["items"][0];
    let now = stack
        .request("inventory.get", &json!({"productId": "A"}))
        .await;
    assert_eq!(newest["revision"], now.body["revision"]);
    assert_eq!(newest["quantityAfter"], now.body["quantity"]);

    // A cursor is the product's own; nonsense is a 400 naming it.
    let cursor = page.body["nextCursor"].as_str().unwrap().to_string();
    for bad in ["x", "0", "999999", cursor.as_str()] {
        let refused = stack
            .request(
                "inventory.history",
                &json!({"productId": "B", "cursor": bad}),
            )
            .await;
        assert_eq!(refused.status, 400, "{bad}: {:?}", refused.body);
        assert_eq!(refused.pointers(), ["/cursor"]);
    }
    let missing = stack
        .request("inventory.history", &json!({"productId": "nope"}))
        .await;
    assert_eq!(missing.status, 404);
    let too_many = stack
        .request(
            "inventory.history",
            &json!({"productId": "A", "limit": 1001}),
        )
        .await;
    assert_eq!(too_many.pointers(), ["/limit"]);
}

#[tokio::test]
async fn a_product_as_it_was_at_a_time() {
    let stack = Stack::start(&SERVICES).await;
    let before_creation = oms_runtime::time::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let first = stack.add_stock("A", 10, 1.0).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = oms_runtime::time::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = stack.add_stock("A", 5, 2.0).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after = oms_runtime::time::now();

    let at = |when: &str| json!({"productId": "A", "at": when});
    let then = stack.request("inventory.get", &at(&between)).await;
    assert_eq!(then.status, 200, "{:?}", then.body);
    assert_eq!(then.body, first, "the first revision, as it was");
    let now = stack.request("inventory.get", &at(&after)).await;
    assert_eq!(now.body, second);
    // Offsets are times too.
    let offset = between.replace('Z', "+00:00");
    assert_eq!(
        stack.request("inventory.get", &at(&offset)).await.body,
        first
    );

    let early = stack.request("inventory.get", &at(&before_creation)).await;
    assert_eq!(early.status, 404, "{:?}", early.body);
    let never = stack
        .request(
            "inventory.get",
            &json!({"productId": "nope", "at": between}),
        )
        .await;
    assert_eq!(never.status, 404);
    for bad in ["yesterday", "2026-02-30T00:00:00Z", "2026-01-01"] {
        let refused = stack.request("inventory.get", &at(bad)).await;
        assert_eq!(refused.status, 400, "{bad}");
        assert_eq!(refused.pointers(), ["/at"], "{bad}");
    }

    // Past the 64 revisions the bucket keeps: 410, not a wrong 404.
    for _ in 0..64 {
        stack.add_stock("A", 1, 2.0).await;
    }
    let gone = stack.request("inventory.get", &at(&between)).await;
    assert_eq!(gone.status, 410, "{:?}", gone.body);
    assert_eq!(gone.body["type"], "/problems/history-gone");
    let early = stack.request("inventory.get", &at(&before_creation)).await;
    assert_eq!(early.status, 410, "not known any more either");
}
