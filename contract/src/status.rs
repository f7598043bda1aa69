//! The order status machine, as one pure function.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    #[default]
    Pending,
    Confirmed,
    Completed,
    Cancelled,
    /// A PENDING order left unpaid past `OMS_PENDING_TTL`: final, set only
    /// by the system; no request may ask for it.
    Expired,
}

/// What setting `to` on an order that is `from` means.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    /// Already there: a no-op that succeeds and writes nothing.
    Same,
    Allowed,
    Illegal,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Confirmed,
        Status::Completed,
        Status::Cancelled,
        Status::Expired,
    ];

    pub fn transition(self, to: Status) -> Transition {
        use Status::*;
        match (self, to) {
            (from, to) if from == to => Transition::Same,
            (Pending, Confirmed | Cancelled | Expired) | (Confirmed, Completed | Cancelled) => {
                Transition::Allowed
            }
            _ => Transition::Illegal,
        }
    }

    /// PENDING and CONFIRMED orders hold stock.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::Confirmed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Confirmed => "CONFIRMED",
            Status::Completed => "COMPLETED",
            Status::Cancelled => "CANCELLED",
            Status::Expired => "EXPIRED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn every_pair_of_statuses() {
        let allowed = [
            (Pending, Confirmed),
            (Pending, Cancelled),
            (Confirmed, Completed),
            (Confirmed, Cancelled),
            (Pending, Expired),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                let want = if from == to {
                    Transition::Same
                } else if allowed.contains(&(from, to)) {
                    Transition::Allowed
                } else {
                    Transition::Illegal
                };
                assert_eq!(from.transition(to), want, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn final_statuses_are_final() {
        for to in [Pending, Confirmed, Cancelled, Completed] {
            for end in [Completed, Cancelled, Expired] {
                if end != to {
                    assert_eq!(end.transition(to), Transition::Illegal);
                }
            }
        }
        assert!(Pending.is_open() && Confirmed.is_open());
        assert!(!Completed.is_open() && !Cancelled.is_open() && !Expired.is_open());
    }
}
