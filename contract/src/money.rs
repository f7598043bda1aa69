//! Money as integer cents. JSON carries decimal numbers with at most two
//! places; inside, sums and products are exact integers, so `totalAmount`
//! never drifts.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest accepted price: well inside f64's exact-integer range in cents.
pub const MAX_CENTS: i64 = 100_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cents(pub i64);

impl Cents {
    /// A JSON number as cents, if it is >= 0 and has at most two decimals.
    pub fn from_decimal(value: f64) -> Option<Cents> {
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        let scaled = value * 100.0;
        let cents = scaled.round();
        // Tolerate the representation error of a two-decimal number, nothing more.
        let tolerance = 1e-6_f64.max(scaled.abs() * 1e-12);
        if (scaled - cents).abs() > tolerance || cents > MAX_CENTS as f64 {
            return None;
        }
        Some(Cents(cents as i64))
    }

    /// The nearest f64 to the exact decimal; serializes as e.g. `19.99`.
    pub fn to_decimal(self) -> f64 {
        self.0 as f64 / 100.0
    }

    pub fn times(self, quantity: u64) -> Cents {
        Cents(self.0.saturating_mul(quantity as i64))
    }
}

impl std::ops::Add for Cents {
    type Output = Cents;
    fn add(self, other: Cents) -> Cents {
        Cents(self.0.saturating_add(other.0))
    }
}

impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(iter: I) -> Cents {
        iter.fold(Cents(0), |a, b| a + b)
    }
}

impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.to_decimal())
    }
}

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cents, D::Error> {
        let value = f64::deserialize(d)?;
        Cents::from_decimal(value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{value} is not an amount of money (>= 0, two decimals at most)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_two_decimals_exactly() {
        assert_eq!(Cents::from_decimal(19.99), Some(Cents(1999)));
        assert_eq!(Cents::from_decimal(0.07), Some(Cents(7)));
        assert_eq!(Cents::from_decimal(0.0), Some(Cents(0)));
        assert_eq!(Cents::from_decimal(1.1), Some(Cents(110)));
        assert_eq!(
            Cents::from_decimal(999_999_999.99),
            Some(Cents(99_999_999_999))
        );
    }

    #[test]
    fn rejects_more_decimals_negative_and_huge() {
        assert_eq!(Cents::from_decimal(0.125), None);
        assert_eq!(Cents::from_decimal(19.999), None);
        assert_eq!(Cents::from_decimal(0.001), None);
        assert_eq!(Cents::from_decimal(-1.0), None);
        assert_eq!(Cents::from_decimal(f64::NAN), None);
        assert_eq!(Cents::from_decimal(1e13), None);
    }

    #[test]
    fn sums_without_float_drift() {
        // 0.1 + 0.2 in floats is 0.30000000000000004; in cents it is 30.
        let total: Cents = [Cents(10), Cents(20)].into_iter().sum();
        assert_eq!(serde_json::to_string(&total).unwrap(), "0.3");
        let many: Cents = std::iter::repeat_n(Cents::from_decimal(0.1).unwrap(), 1000).sum();
        assert_eq!(many, Cents(10_000));
        assert_eq!(
            serde_json::to_string(&Cents(1999).times(3)).unwrap(),
            "59.97"
        );
    }

    #[test]
    fn round_trips_through_json() {
        for cents in [0, 1, 7, 10, 1999, 123_456_789, 99_999_999_999] {
            let json = serde_json::to_string(&Cents(cents)).unwrap();
            assert_eq!(
                serde_json::from_str::<Cents>(&json).unwrap(),
                Cents(cents),
                "{json}"
            );
        }
    }
}
