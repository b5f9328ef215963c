//! Which rule of the login grammar a refused username broke, and the message that says so.

use std::fmt;

use super::{ACCOUNT_MAX, LOGIN_MAX, TARGET_MAX, USER_MAX};

/// Which rule a username broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Empty,
    TooLong,
    EmptyUser,
    EmptyTarget,
    EmptyAccount,
    ExtraSeparator,
    Control,
    Whitespace,
    NonAscii,
    UserChar(char),
    TargetChar(char),
    TargetStart(char),
    AccountChar(char),
    AccountStart(char),
    UserTooLong,
    TargetTooLong,
    AccountTooLong,
    /// `+` followed by something other than `strict` (or nothing).
    UnknownFlag(String),
    /// `+strict` on a relay login.
    FlagOnRelay,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => write!(f, "it is empty"),
            Problem::TooLong => write!(f, "it is longer than {LOGIN_MAX} characters"),
            Problem::EmptyUser => write!(f, "the user part before ':' is empty"),
            Problem::EmptyTarget => write!(f, "the target part after ':' is empty"),
            Problem::EmptyAccount => write!(f, "the account part after the second ':' is empty"),
            Problem::ExtraSeparator => write!(f, "it has more than two ':'"),
            Problem::Control => write!(f, "it contains a control character"),
            Problem::Whitespace => write!(f, "it contains whitespace"),
            Problem::NonAscii => write!(f, "it contains a non-ASCII character"),
            Problem::UserChar(c) => write!(
                f,
                "the user part contains {c:?} (allowed: a-z, 0-9, '_', '.', '-')"
            ),
            Problem::TargetChar(c) => write!(
                f,
                "the target part contains {c:?} (allowed: a-z, 0-9, '_', '.', '-')"
            ),
            Problem::TargetStart(c) => {
                write!(f, "the target must start with a letter or digit, not {c:?}")
            }
            Problem::AccountChar(c) => write!(
                f,
                "the account part contains {c:?} (allowed: A-Z, a-z, 0-9, '_', '.', '-')"
            ),
            Problem::AccountStart(c) => write!(
                f,
                "the account must start with a letter, a digit or '_', not {c:?}"
            ),
            Problem::UserTooLong => write!(f, "the user part is longer than {USER_MAX} characters"),
            Problem::TargetTooLong => {
                write!(f, "the target part is longer than {TARGET_MAX} characters")
            }
            Problem::AccountTooLong => {
                write!(
                    f,
                    "the account part is longer than {ACCOUNT_MAX} characters"
                )
            }
            Problem::UnknownFlag(flag) => write!(
                f,
                "unknown flag {flag:?} (the only flag is \"+strict\", as in USER+strict)"
            ),
            Problem::FlagOnRelay => write!(
                f,
                "\"+strict\" applies to tunnel logins (USER+strict) only, not to USER:TARGET"
            ),
        }
    }
}

/// A refused username, with a message fit for the client and the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid login {shown}: {problem}; use USER to open the menu, USER:TARGET[:ACCOUNT] to connect, or USER+strict for strict tunnel names"
)]
pub struct InvalidLogin {
    /// The input, escaped to printable ASCII and cut to a printable length.
    pub shown: String,
    pub problem: Problem,
}
