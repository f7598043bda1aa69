//! Reading settings from the environment, strictly: a variable that is set
//! but does not say what it must is an error naming the variable and what it
//! expected, never a silent default. `OMS_HOLD_TTL=1m` stops the process at
//! start instead of running it with a TTL nobody chose.

use std::fmt;
use std::time::Duration;

/// A setting the process will not start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub found: String,
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?}: expected {}",
            self.variable, self.found, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Where settings come from: the process environment, or a table in tests.
/// An empty value counts as unset.
pub struct Env {
    lookup: Box<Lookup>,
}

type Lookup = dyn Fn(&str) -> Option<String>;

impl Env {
    pub fn process() -> Env {
        Env::with(|name| std::env::var(name).ok())
    }

    pub fn with(lookup: impl Fn(&str) -> Option<String> + 'static) -> Env {
        Env {
            lookup: Box::new(lookup),
        }
    }

    /// A fixed table, for tests of what a setting means.
    pub fn table(vars: &[(&str, &str)]) -> Env {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::with(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    pub fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }

    pub fn text_or(&self, name: &str, default: &str) -> String {
        self.text(name).unwrap_or_else(|| default.to_string())
    }

    /// Any value that `parse` accepts; `expected` says what that is.
    pub fn parsed<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.text(name) {
            None => Ok(None),
            Some(text) => parse(text.trim()).map(Some).ok_or_else(|| ConfigError {
                variable: name.to_string(),
                found: text,
                expected: expected.to_string(),
            }),
        }
    }

    /// A whole number in `min..=max` (`_` separators allowed: `1_000_000`).
    pub fn whole(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let expected = format!("a whole number from {min} to {max}");
        let value = self.parsed(name, &expected, |text| {
            text.replace('_', "")
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
        })?;
        Ok(value.unwrap_or(default))
    }

    /// Seconds, fractions allowed, more than 0 and at most `max`.
    pub fn seconds(&self, name: &str, default: f64, max: f64) -> Result<Duration, ConfigError> {
        let expected = format!("seconds as a number (like 60 or 0.5), > 0 and <= {max}");
        let value = self.parsed(name, &expected, |text| {
            text.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= max)
                .map(Duration::from_secs_f64)
        })?;
        Ok(value.unwrap_or(Duration::from_secs_f64(default)))
    }

    /// One of a fixed set of words.
    pub fn choice(
        &self,
        name: &str,
        choices: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, ConfigError> {
        let expected = format!("one of {}", choices.join(", "));
        let value = self.parsed(name, &expected, |text| {
            choices
                .iter()
                .copied()
                .find(|c| c.eq_ignore_ascii_case(text))
        })?;
        Ok(value.unwrap_or(default))
    }

    /// The path of a file that exists and can be read.
    pub fn file(&self, name: &str) -> Result<Option<String>, ConfigError> {
        self.parsed(name, "the path of a readable file", |path| {
            std::fs::File::open(path).ok().map(|_| path.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_empty_give_the_default() {
        let env = Env::table(&[("A", "")]);
        assert_eq!(env.whole("A", 7, 1, 9), Ok(7));
        assert_eq!(env.seconds("B", 60.0, 3600.0), Ok(Duration::from_secs(60)));
        assert_eq!(env.choice("C", &["json", "pretty"], "pretty"), Ok("pretty"));
        assert_eq!(env.file("D"), Ok(None));
    }

    #[test]
    fn well_formed_values_are_read() {
        let env = Env::table(&[("N", "1_000"), ("S", "0.5"), ("C", "JSON")]);
        assert_eq!(env.whole("N", 1, 1, 5_000), Ok(1_000));
        assert_eq!(env.seconds("S", 1.0, 10.0), Ok(Duration::from_millis(500)));
        assert_eq!(env.choice("C", &["json", "pretty"], "pretty"), Ok("json"));
    }

    #[test]
    fn malformed_values_name_the_variable_and_what_it_expected() {
        let env = Env::table(&[
            ("OMS_HOLD_TTL", "1m"),
            ("ZERO", "0"),
            ("BIG", "11"),
            ("WORD", "xml"),
            ("PATH_X", "/no/such/file"),
        ]);
        let err = env.seconds("OMS_HOLD_TTL", 60.0, 86_400.0).unwrap_err();
        assert_eq!(err.variable, "OMS_HOLD_TTL");
        assert_eq!(err.found, "1m");
        assert!(err
            .to_string()
            .starts_with("OMS_HOLD_TTL=\"1m\": expected seconds"));
        assert!(env.seconds("ZERO", 1.0, 10.0).is_err());
        assert!(env
            .whole("BIG", 1, 1, 10)
            .unwrap_err()
            .expected
            .contains("1 to 10"));
        assert!(env.choice("WORD", &["json", "pretty"], "pretty").is_err());
        assert_eq!(env.file("PATH_X").unwrap_err().variable, "PATH_X");
    }
}
