//! Environment-variable configuration helpers.
//!
//! Every binary reads its settings from the environment; these helpers make
//! the error name the variable and the reason, never the value (it might be a
//! secret).

use std::fmt::Display;
use std::str::FromStr;

/// A configuration value is missing or malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {name} is required but not set")]
    Missing { name: String },
    /// A variable is set but its value cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] for `name`.
    pub fn invalid(name: &str, reason: impl Display) -> Self {
        Self::Invalid {
            name: name.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// The variable's value, or `None` when it is unset, empty or not UTF-8.
pub fn env_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable's value, or [`ConfigError::Missing`] when unset or empty.
pub fn env_required(name: &str) -> Result<String, ConfigError> {
    env_opt(name).ok_or_else(|| ConfigError::Missing {
        name: name.to_owned(),
    })
}

/// Parses the variable, falling back to `default` when unset or empty.
pub fn env_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match env_opt(name) {
        None => Ok(default),
        Some(raw) => parse(name, raw.trim()),
    }
}

/// Parses `raw` as the value of variable `name` (handy for tests and for
/// values that come from somewhere other than the process environment).
pub fn parse<T>(name: &str, raw: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    raw.parse::<T>().map_err(|e| ConfigError::invalid(name, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // Variable names are unique per test so parallel tests never race.
    #[test]
    fn env_or_uses_default_when_unset() {
        assert_eq!(env_or("PP_TEST_CONFIG_UNSET_XYZ", 7u16), Ok(7));
    }

    #[test]
    fn env_opt_treats_empty_as_none() {
        assert_eq!(env_opt("PP_TEST_CONFIG_NEVER_SET_ABC"), None);
        assert!(matches!(
            env_required("PP_TEST_CONFIG_NEVER_SET_ABC"),
            Err(ConfigError::Missing { name }) if name == "PP_TEST_CONFIG_NEVER_SET_ABC"
        ));
    }

    #[test]
    fn parse_error_names_the_variable() {
        let err = parse::<u16>("PORT", "eighty").err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("PORT"), "{msg}");
        assert!(!msg.contains("eighty"), "values are never echoed: {msg}");
    }

    #[test]
    fn parse_accepts_valid_values() {
        assert_eq!(parse::<u64>("X", "15"), Ok(15));
    }
}
