//! The SSH login grammar (the username of every connection to ssh-edge, before
//! authentication): any string is accepted or refused without a panic, an accepted login
//! spells exactly what was typed, and a refusal's message is short printable ASCII.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phirepass_parse::ssh_login::{self, LOGIN_MAX, Login, USER_MAX, relay_login, valid_account};

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    match ssh_login::parse(&raw) {
        Ok(login) => {
            let typed = match &login {
                Login::Menu {
                    user,
                    strict: false,
                } => user.clone(),
                Login::Menu { user, strict: true } => format!("{user}+strict"),
                Login::Relay {
                    user,
                    target,
                    account,
                } => relay_login(user, target, account.as_deref()),
            };
            assert_eq!(typed, raw, "no normalisation");
            assert!(raw.len() <= LOGIN_MAX && (1..=USER_MAX).contains(&login.user().len()));
            assert!(login.account().is_none_or(valid_account));
        }
        Err(invalid) => {
            let message = invalid.to_string();
            assert!(message.is_ascii(), "{message:?}");
            assert!(
                !message.chars().any(|c| c.is_ascii_control()),
                "{message:?}"
            );
            assert!(message.len() < 400, "{} bytes", message.len());
        }
    }
});
