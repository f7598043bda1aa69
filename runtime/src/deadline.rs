//! Deadlines that travel with a request: `Oms-Deadline: <unix
//! epoch milliseconds>`. The gateway sets it to the moment it stops waiting
//! (now + `OMS_REQUEST_TIMEOUT`); any NATS caller may send one. A handler
//! does not start work past it (504), and a request it makes carries a
//! deadline a little earlier than its own, so that a chain (create →
//! reserve) never outlives its caller and a reply still has time to travel
//! back.

use crate::problem::Problem;
use async_nats::HeaderMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const DEADLINE_HEADER: &str = "Oms-Deadline";

/// Kept back from a request's own deadline for the reply's way home when it
/// calls another operation: at most this, at most a quarter of what is left.
const REPLY_MARGIN: Duration = Duration::from_millis(100);

/// A moment, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(u64);

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl Deadline {
    /// `after` from now.
    pub fn after(after: Duration) -> Deadline {
        Deadline(now_millis().saturating_add(after.as_millis() as u64))
    }

    /// The deadline a request names: none without the header; a 400 when
    /// the header is not a number of milliseconds.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Result<Option<Deadline>, Problem> {
        let Some(value) = headers.and_then(|h| h.get(DEADLINE_HEADER)) else {
            return Ok(None);
        };
        value
            .as_str()
            .trim()
            .parse()
            .map(|millis| Some(Deadline(millis)))
            .map_err(|_| {
                Problem::bad_request(
                    format!("{DEADLINE_HEADER} must be unix epoch milliseconds"),
                    Vec::new(),
                )
            })
    }

    pub fn passed(self) -> bool {
        now_millis() >= self.0
    }

    /// What is left of it (zero once passed).
    pub fn remaining(self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(now_millis()))
    }

    /// The deadline to give a request made on the way: earlier by a margin
    /// for the reply, never later than this one.
    pub fn for_call(self) -> Deadline {
        let margin = REPLY_MARGIN.min(self.remaining() / 4);
        Deadline(self.0 - margin.as_millis() as u64)
    }

    pub fn header_value(self) -> String {
        self.0.to_string()
    }

    /// A 504 for work refused because its deadline passed.
    pub fn passed_problem(what: &str) -> Problem {
        Problem::timeout(format!(
            "the caller's deadline passed before {what}; nothing was done"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_gets_an_earlier_deadline_and_a_malformed_header_is_a_400() {
        let own = Deadline::after(Duration::from_secs(5));
        let call = own.for_call();
        assert!(call < own && own.0 - call.0 == 100);
        let short = Deadline::after(Duration::from_millis(40));
        assert!(short.for_call() <= short);
        assert!(!own.passed() && Deadline(1).passed());
        let mut headers = HeaderMap::new();
        headers.insert(DEADLINE_HEADER, "soon");
        assert_eq!(
            Deadline::from_headers(Some(&headers)).unwrap_err().status,
            400
        );
        headers.insert(DEADLINE_HEADER, "1700000000000");
        assert_eq!(
            Deadline::from_headers(Some(&headers)).unwrap(),
            Some(Deadline(1_700_000_000_000))
        );
        assert_eq!(Deadline::from_headers(None).unwrap(), None);
    }
}
