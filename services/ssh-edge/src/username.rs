//! The SSH username grammar. One rule:
//!
//! ```text
//! login    = user [ "+strict" ] / user ":" target [ ":" account ]
//! user     = 1*32 ( a-z / 0-9 / "_" / "." / "-" )            ; a Phirepass username
//! target   = ( a-z / 0-9 ) *62 ( a-z / 0-9 / "_" / "." / "-" ) ; a node or host name
//! account  = ( A-Z / a-z / 0-9 / "_" ) *31 ( A-Z / a-z / 0-9 / "_" / "." / "-" )
//!                                                             ; the account on the target
//! ```
//!
//! `alice` opens the management screen; `alice:web-1` relays to target `web-1` as its default
//! account (the account its vault login names, else the first login of alice's grant, else
//! `alice`); `alice:web-1:root` relays to `web-1` as `root`, if a grant allows that login. The
//! account is the last part because `@` belongs to ssh (`ssh alice:web-1:root@edge`); `scp`
//! and `sftp` take the login as `-o User=alice:web-1:root`. The account is the one part that
//! may hold upper case (some systems have such accounts).
//! `alice+strict` is a management login whose `ssh -R` forwards must get exactly the names
//! they ask for: a name that cannot be granted refuses the forward instead of falling back
//! to a random one. `+strict` is the only flag, and only on management logins (`alice+`,
//! `alice+foo`, `alice+strict:web-1` are refused). The string
//! is split at each `:`; anything else (a third `:`, an empty part, upper case,
//! whitespace, control or non-ASCII characters, `@`, `/`, over-long parts) is refused with a
//! message that says which rule was broken. Names are never normalised (no case folding, no
//! Unicode mapping), so what is authorised is exactly what was typed.

use std::fmt;

pub const USER_MAX: usize = 32;
pub const TARGET_MAX: usize = 63;
pub const ACCOUNT_MAX: usize = 32;
/// The one login flag: strict tunnel names for `ssh -R`.
pub const STRICT_FLAG: &str = "+strict";
/// Longest login accepted (`user:target:account` at their maxima); longer input is refused
/// unread.
pub const LOGIN_MAX: usize = USER_MAX + 1 + TARGET_MAX + 1 + ACCOUNT_MAX;

/// What the client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    /// `alice` (or `alice+strict`): the management screen and `ssh -R` tunnels.
    Menu { user: String, strict: bool },
    /// `alice:web-1` (default account) or `alice:web-1:root`: relay to a target.
    Relay {
        user: String,
        target: String,
        account: Option<String>,
    },
}

impl Login {
    pub fn user(&self) -> &str {
        match self {
            Login::Menu { user, .. } | Login::Relay { user, .. } => user,
        }
    }

    /// `ssh -R` names must be granted as asked, or the forward is refused.
    pub fn strict(&self) -> bool {
        matches!(self, Login::Menu { strict: true, .. })
    }

    pub fn target(&self) -> Option<&str> {
        match self {
            Login::Menu { .. } => None,
            Login::Relay { target, .. } => Some(target),
        }
    }

    /// The account named in the login (`alice:web-1:root`), if any.
    pub fn account(&self) -> Option<&str> {
        match self {
            Login::Menu { .. } => None,
            Login::Relay { account, .. } => account.as_deref(),
        }
    }
}

/// The login string that reaches `target` as `account` (`None`: the default account), as
/// typed after `ssh`: for messages that say how to choose another account.
pub fn relay_login(user: &str, target: &str, account: Option<&str>) -> String {
    match account {
        Some(account) => format!("{user}:{target}:{account}"),
        None => format!("{user}:{target}"),
    }
}

/// Whether `account` is a well-formed target account (the `account` rule above).
pub fn valid_account(account: &str) -> bool {
    check_account(account).is_ok()
}

fn check_account(account: &str) -> Result<(), Problem> {
    let Some(first) = account.chars().next() else {
        return Err(Problem::EmptyAccount);
    };
    if let Some(c) = account
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Problem::AccountChar(c));
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(Problem::AccountStart(first));
    }
    if account.len() > ACCOUNT_MAX {
        return Err(Problem::AccountTooLong);
    }
    Ok(())
}

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
    /// The input, escaped (control characters visible) and cut to a printable length.
    pub shown: String,
    pub problem: Problem,
}

fn show(raw: &str) -> String {
    let escaped: String = raw
        .chars()
        .take(LOGIN_MAX + 4)
        .flat_map(char::escape_debug)
        .collect();
    let cut: String = escaped.chars().take(120).collect();
    if raw.chars().count() > LOGIN_MAX + 4 || escaped.chars().count() > 120 {
        format!("\"{cut}...\"")
    } else {
        format!("\"{cut}\"")
    }
}

fn allowed(b: char) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, '_' | '.' | '-')
}

pub fn parse(raw: &str) -> Result<Login, InvalidLogin> {
    check(raw).map_err(|problem| InvalidLogin {
        shown: show(raw),
        problem,
    })
}

fn check(raw: &str) -> Result<Login, Problem> {
    if raw.is_empty() {
        return Err(Problem::Empty);
    }
    // Character classes first: they explain more than a length or a split would.
    if raw.chars().any(char::is_control) {
        return Err(Problem::Control);
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(Problem::Whitespace);
    }
    if !raw.is_ascii() {
        return Err(Problem::NonAscii);
    }
    if raw.len() > LOGIN_MAX {
        return Err(Problem::TooLong);
    }
    let mut parts = raw.splitn(4, ':');
    let user = parts.next().unwrap_or_default();
    let target = parts.next();
    let account = parts.next();
    if parts.next().is_some() {
        return Err(Problem::ExtraSeparator);
    }
    // The flag goes between user and target: `alice+strict`, never `alice:web+strict`.
    let (user, strict) = match user.split_once('+') {
        None => (user, false),
        Some((u, flag)) => {
            if flag != STRICT_FLAG.trim_start_matches('+') {
                let shown: String = flag.chars().take(16).collect();
                return Err(Problem::UnknownFlag(format!("+{shown}")));
            }
            if target.is_some() {
                return Err(Problem::FlagOnRelay);
            }
            (u, true)
        }
    };
    if user.is_empty() {
        return Err(Problem::EmptyUser);
    }
    if let Some(c) = user.chars().find(|c| !allowed(*c)) {
        return Err(Problem::UserChar(c));
    }
    if user.len() > USER_MAX {
        return Err(Problem::UserTooLong);
    }
    let Some(target) = target else {
        return Ok(Login::Menu {
            user: user.into(),
            strict,
        });
    };
    let Some(first) = target.chars().next() else {
        return Err(Problem::EmptyTarget);
    };
    if let Some(c) = target.chars().find(|c| !allowed(*c)) {
        return Err(Problem::TargetChar(c));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(Problem::TargetStart(first));
    }
    if target.len() > TARGET_MAX {
        return Err(Problem::TargetTooLong);
    }
    if let Some(account) = account {
        check_account(account)?;
    }
    Ok(Login::Relay {
        user: user.into(),
        target: target.into(),
        account: account.map(str::to_owned),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn menu(u: &str) -> Result<Login, Problem> {
        Ok(Login::Menu {
            user: u.into(),
            strict: false,
        })
    }

    fn strict(u: &str) -> Result<Login, Problem> {
        Ok(Login::Menu {
            user: u.into(),
            strict: true,
        })
    }

    fn relay(u: &str, t: &str) -> Result<Login, Problem> {
        Ok(Login::Relay {
            user: u.into(),
            target: t.into(),
            account: None,
        })
    }

    fn relay_as(u: &str, t: &str, a: &str) -> Result<Login, Problem> {
        Ok(Login::Relay {
            user: u.into(),
            target: t.into(),
            account: Some(a.into()),
        })
    }

    #[test]
    fn table() {
        let long_user = "a".repeat(33);
        let long_target = format!("alice:{}", "w".repeat(64));
        let max = format!("{}:{}", "a".repeat(32), "w".repeat(63));
        let max_account = format!("{max}:{}", "r".repeat(32));
        let long_account = format!("alice:web-1:{}", "r".repeat(33));
        let huge = "a".repeat(10_000);
        let cases: Vec<(&str, Result<Login, Problem>)> = vec![
            ("alice", menu("alice")),
            ("alice:web-1", relay("alice", "web-1")),
            ("a.b_c-d:1host.example", relay("a.b_c-d", "1host.example")),
            (max.as_str(), relay(&"a".repeat(32), &"w".repeat(63))),
            ("", Err(Problem::Empty)),
            (":", Err(Problem::EmptyUser)),
            (":web-1", Err(Problem::EmptyUser)),
            ("alice:", Err(Problem::EmptyTarget)),
            ("alice::web-1", Err(Problem::EmptyTarget)),
            ("alice:web-1:root", relay_as("alice", "web-1", "root")),
            ("alice:web-1:22", relay_as("alice", "web-1", "22")),
            (
                "alice:web-1:Admin.x_y-z",
                relay_as("alice", "web-1", "Admin.x_y-z"),
            ),
            ("alice:web-1:_svc", relay_as("alice", "web-1", "_svc")),
            (
                max_account.as_str(),
                relay_as(&"a".repeat(32), &"w".repeat(63), &"r".repeat(32)),
            ),
            (long_account.as_str(), Err(Problem::AccountTooLong)),
            ("alice:web:", Err(Problem::EmptyAccount)),
            ("alice:web-1:root:x", Err(Problem::ExtraSeparator)),
            ("alice:web-1::", Err(Problem::ExtraSeparator)),
            ("alice:web-1:-root", Err(Problem::AccountStart('-'))),
            ("alice:web-1:.root", Err(Problem::AccountStart('.'))),
            ("alice:web-1:ro/ot", Err(Problem::AccountChar('/'))),
            ("alice:web-1:ro$t", Err(Problem::AccountChar('$'))),
            ("alice:web-1:root@x", Err(Problem::AccountChar('@'))),
            ("alice:web-1:rоot", Err(Problem::NonAscii)), // Cyrillic 'о'
            ("alice+strict:web-1:root", Err(Problem::FlagOnRelay)),
            ("alice:Web-1:root", Err(Problem::TargetChar('W'))),
            ("alice\n", Err(Problem::Control)),
            ("alice:web\u{0}1", Err(Problem::Control)),
            ("alice\u{1b}[2J", Err(Problem::Control)),
            ("alice:web-1\r", Err(Problem::Control)),
            ("al ice", Err(Problem::Whitespace)),
            (" alice", Err(Problem::Whitespace)),
            ("alice:\u{a0}web", Err(Problem::Whitespace)),
            ("alice:web\u{200b}1", Err(Problem::NonAscii)),
            ("аlice", Err(Problem::NonAscii)),       // Cyrillic 'а'
            ("alice:wеb-1", Err(Problem::NonAscii)), // Cyrillic 'е'
            ("alice:ｗeb", Err(Problem::NonAscii)),  // full-width w
            ("Alice", Err(Problem::UserChar('A'))),
            ("alice:Web-1", Err(Problem::TargetChar('W'))),
            ("alice@web-1", Err(Problem::UserChar('@'))),
            ("alice:web@1", Err(Problem::TargetChar('@'))),
            ("alice/../root", Err(Problem::UserChar('/'))),
            ("alice:.hidden", Err(Problem::TargetStart('.'))),
            ("alice:-web", Err(Problem::TargetStart('-'))),
            ("alice:_web", Err(Problem::TargetStart('_'))),
            ("alice:web/1", Err(Problem::TargetChar('/'))),
            ("alice;rm:web", Err(Problem::UserChar(';'))),
            ("alice:web*", Err(Problem::TargetChar('*'))),
            ("alice:web.>", Err(Problem::TargetChar('>'))),
            ("$(id):web", Err(Problem::UserChar('$'))),
            (long_user.as_str(), Err(Problem::UserTooLong)),
            ("alice+strict", strict("alice")),
            ("a.b_c-d+strict", strict("a.b_c-d")),
            ("alice+", Err(Problem::UnknownFlag("+".into()))),
            ("alice+foo", Err(Problem::UnknownFlag("+foo".into()))),
            ("alice+Strict", Err(Problem::UnknownFlag("+Strict".into()))),
            (
                "alice+strict+strict",
                Err(Problem::UnknownFlag("+strict+strict".into())),
            ),
            ("alice+strict:web", Err(Problem::FlagOnRelay)),
            ("alice:web+strict", Err(Problem::TargetChar('+'))),
            ("+strict", Err(Problem::EmptyUser)),
            ("Alice+strict", Err(Problem::UserChar('A'))),
            (long_target.as_str(), Err(Problem::TargetTooLong)),
            (huge.as_str(), Err(Problem::TooLong)),
        ];
        assert!(cases.len() >= 30);
        for (raw, want) in cases {
            assert_eq!(check(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn messages_escape_and_cut_the_input() {
        let err = parse("alice\u{1b}[2J:web").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\\u{1b}"), "{msg}");
        assert!(!msg.contains('\u{1b}'), "{msg}");
        assert!(msg.contains("control character"), "{msg}");
        let long = parse(&"x".repeat(5000)).unwrap_err().to_string();
        assert!(long.len() < 300, "{}", long.len());
        assert!(long.contains("..."), "{long}");
        let flag = parse("alice+foo").unwrap_err().to_string();
        assert!(flag.contains("+strict"), "{flag}");
        let account = parse("alice:web-1:ro/ot").unwrap_err().to_string();
        assert!(
            account.contains("account part") && account.contains("USER:TARGET[:ACCOUNT]"),
            "{account}"
        );
    }

    #[test]
    fn relay_login_round_trips() {
        for (account, want) in [(None, "alice:web-1"), (Some("root"), "alice:web-1:root")] {
            let login = relay_login("alice", "web-1", account);
            assert_eq!(login, want);
            assert_eq!(parse(&login).unwrap().account(), account);
        }
        assert!(valid_account("deploy"));
        assert!(!valid_account("de ploy"));
        assert!(!valid_account(""));
    }
}
