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

mod problem;

pub use problem::{InvalidLogin, Problem};

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
/// The input for a message: every character outside printable ASCII escaped (`\u{430}`), so
/// the message is plain ASCII of bounded length: no terminal escape, bidi override or look-alike
/// letter reaches the client's terminal or the log, and a homoglyph shows why it was refused.
fn show(raw: &str) -> String {
    let escaped: String = raw
        .chars()
        .take(LOGIN_MAX + 4)
        .flat_map(char::escape_default)
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
mod tests;
