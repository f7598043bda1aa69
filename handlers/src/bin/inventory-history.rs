//! `inventory.history`: a product's ledger entries (`OMS_LEDGER`, subject
//! `ledger.<productId>`), newest first, `limit` at a time (staff only).
//! `nextCursor` is the stream sequence of the oldest entry on the page (an
//! opaque string to callers); the next page is the entries before it.
//!
//! Newest first without a consumer and without reading the whole history:
//! every entry carries the product's change number `seq` (1, 2, ... in
//! stream order), so the page's oldest entry is the one numbered
//! `top - limit + 1`. A search over stream sequences with direct gets of
//! "the first entry of this subject at or after sequence s" finds it
//! (interpolating between the bounds, bisecting every other step; a probe
//! that lands below the target moves the lower bound to that entry), and
//! one batch direct get reads the page forward from there. A page of 100
//! from 10^5 entries took ~5 small requests and one batch (bench/README.md). Should numbers repeat or skip (a hand
//! edit in KV), the page reads on until the upper bound so no entry is
//! skipped; it is only longer or shorter than `limit`.

use oms_handlers::contract::{self, History, Product};
use oms_handlers::model::product_key;
use oms_handlers::read_model::{Raw, RawPage};
use oms_handlers::{ledger, run, Ctx, Problem};
use oms_runtime::direct::{self, Stored};
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;

/// A page stays well under the server's default `max_payload` (1 MiB).
const MAX_PAGE_BYTES: usize = 768 * 1024;

fn main() {
    run(&contract::INVENTORY_HISTORY, history)
}

async fn history(ctx: Ctx, req: History) -> Result<RawPage, Problem> {
    ctx.staff_only()?;
    let limit = req.limit.unwrap_or(100).clamp(1, 1000);
    let reader = Reader {
        client: &ctx.client,
        subject: ledger::subject(&req.product_id),
    };
    // The bound (exclusive) below which the page lies, the number of its
    // newest entry, and an entry numbered at least that at or below the
    // bound (the newest, or the cursor's).
    let (bound, top, known) = match &req.cursor {
        None => match reader.last().await? {
            Some(last) => {
                let n = number(&last)?;
                (last.sequence + 1, n, (last.sequence, n))
            }
            None => {
                // No entry (yet): an empty history, or no such product.
                let product = ctx
                    .store
                    .get::<Product>(&product_key(&req.product_id))
                    .await?;
                return match product {
                    Some(_) => Ok(RawPage {
                        items: Vec::new(),
                        next_cursor: None,
                    }),
                    None => Err(Problem::not_found(format!(
                        "product {} not found",
                        req.product_id
                    ))),
                };
            }
        },
        Some(cursor) => {
            let invalid =
                || Problem::invalid_field("/cursor", "not a cursor of this product's history");
            let at: u64 = cursor
                .parse()
                .ok()
                .filter(|at| *at > 0)
                .ok_or_else(invalid)?;
            let entry = reader.at(at).await?.ok_or_else(invalid)?;
            if entry.subject != reader.subject {
                return Err(invalid());
            }
            let n = number(&entry)?;
            (at, n - 1, (at, n))
        }
    };
    let target = top - limit as i64 + 1;
    let start = if target <= 1 {
        1
    } else {
        reader.first_numbered(target, known).await?
    };
    let entries = reader.page(start, bound, top, limit).await?;
    let mut items: Vec<Raw> = Vec::with_capacity(entries.len());
    let mut bytes = 0;
    let mut oldest: Option<&Stored> = None;
    for entry in entries.iter().rev() {
        bytes += entry.payload.len() + 1;
        if bytes > MAX_PAGE_BYTES && !items.is_empty() {
            break;
        }
        items.push(raw(entry)?);
        oldest = Some(entry);
    }
    let next_cursor = match oldest {
        Some(oldest) if reader.has_before(oldest).await? => Some(oldest.sequence.to_string()),
        _ => None,
    };
    Ok(RawPage { items, next_cursor })
}

/// Reads one product's entries by direct gets.
struct Reader<'a> {
    client: &'a async_nats::Client,
    subject: String,
}

impl Reader<'_> {
    async fn last(&self) -> Result<Option<Stored>, Problem> {
        self.one(json!({"last_by_subj": self.subject})).await
    }

    /// The message at `sequence`, whatever its subject.
    async fn at(&self, sequence: u64) -> Result<Option<Stored>, Problem> {
        self.one(json!({"seq": sequence})).await
    }

    /// The first entry of the product at or after `sequence`.
    async fn next(&self, sequence: u64) -> Result<Option<Stored>, Problem> {
        self.one(json!({"seq": sequence, "next_by_subj": self.subject}))
            .await
    }

    async fn one(&self, request: serde_json::Value) -> Result<Option<Stored>, Problem> {
        direct::one(self.client, ledger::STREAM, &request)
            .await
            .map_err(unavailable)
    }

    /// A stream sequence from which the product's next entry is numbered
    /// `target` or more, below `bound`. `top` is an entry known to be
    /// numbered at least `target`: (its sequence, its number).
    ///
    /// Interpolation search, bisecting every other step so it never takes
    /// more than about twice log2(bound) probes: a product's numbers grow
    /// evenly along the stream when its entries are spread evenly (one hot
    /// product, or many products at similar rates), and then the first
    /// guess usually lands on the target itself.
    async fn first_numbered(&self, target: i64, top: (u64, i64)) -> Result<u64, Problem> {
        // Invariants: the first entry at or after `hi.0` is numbered
        // >= target; every entry at or before `lo.0` is numbered < target.
        let (mut lo, mut hi) = ((0u64, 0i64), top);
        for step in 0u32.. {
            if hi.0 - lo.0 <= 1 {
                break;
            }
            let span = (hi.0 - lo.0) as i128;
            let guess = if step % 2 == 0 && hi.1 > lo.1 {
                let ahead = i128::from(target - lo.1) * span / i128::from(hi.1 - lo.1);
                lo.0 + (ahead.clamp(1, span - 1) as u64)
            } else {
                lo.0 + (hi.0 - lo.0) / 2
            };
            match self.next(guess).await? {
                Some(entry) if entry.sequence <= top.0 => {
                    let n = number(&entry)?;
                    if n == target {
                        return Ok(entry.sequence);
                    }
                    if n < target {
                        lo = (entry.sequence.max(guess), n);
                        if lo.0 >= hi.0 {
                            return Ok(hi.0);
                        }
                    } else {
                        hi = (guess, n);
                    }
                }
                _ => hi = (guess, hi.1),
            }
        }
        Ok(hi.0)
    }

    /// Up to the newest `limit` entries from `start` up to `bound`
    /// (exclusive), oldest first. Reads on until the entry numbered `top`
    /// or the bound (a batch may also end early, at the server's byte cap).
    async fn page(
        &self,
        start: u64,
        bound: u64,
        top: i64,
        limit: usize,
    ) -> Result<Vec<Stored>, Problem> {
        let mut kept: VecDeque<Stored> = VecDeque::with_capacity(limit);
        let mut from = start;
        loop {
            let request = json!({"seq": from, "next_by_subj": self.subject, "batch": limit});
            let batch = direct::batch(self.client, ledger::STREAM, &request)
                .await
                .map_err(unavailable)?;
            let mut last = None;
            for entry in batch.into_iter().take_while(|e| e.sequence < bound) {
                last = Some((entry.sequence, number(&entry)?));
                if kept.len() == limit {
                    kept.pop_front();
                }
                kept.push_back(entry);
            }
            let Some((sequence, number)) = last else {
                return Ok(kept.into());
            };
            if sequence + 1 >= bound {
                return Ok(kept.into());
            }
            // Reached the top by number: done, unless a repeated number (a
            // hand edit) left more entries before the bound.
            if number >= top {
                match self.next(sequence + 1).await? {
                    Some(more) if more.sequence < bound => {}
                    _ => return Ok(kept.into()),
                }
            }
            from = sequence + 1;
        }
    }

    /// Whether the product has an entry older than `entry`.
    async fn has_before(&self, entry: &Stored) -> Result<bool, Problem> {
        if number(entry)? > 1 {
            return Ok(true);
        }
        let first = self.next(1).await?;
        Ok(first.is_some_and(|first| first.sequence < entry.sequence))
    }
}

/// An entry's change number.
fn number(entry: &Stored) -> Result<i64, Problem> {
    #[derive(Deserialize)]
    struct Numbered {
        seq: i64,
    }
    serde_json::from_slice::<Numbered>(&entry.payload)
        .map(|n| n.seq)
        .map_err(|e| Problem::internal(format!("ledger entry {}: {e}", entry.sequence)))
}

fn raw(entry: &Stored) -> Result<Raw, Problem> {
    let text = std::str::from_utf8(&entry.payload).map_err(Problem::internal)?;
    serde_json::value::RawValue::from_string(text.to_owned()).map_err(Problem::internal)
}

fn unavailable(why: String) -> Problem {
    tracing::warn!(error = %why, "ledger read failed");
    Problem::unavailable("the ledger is unavailable")
}
