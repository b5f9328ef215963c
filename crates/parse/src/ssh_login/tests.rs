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

/// Found by fuzz/fuzz_targets/ssh_login.rs: 82 U+FFFD characters made a 401-byte message
/// (each kept as 3 bytes of UTF-8, and shown to the client as is). Messages are now ASCII.
#[test]
fn messages_are_ascii_whatever_the_input() {
    let mut crash = vec![0xff; 79];
    crash.extend_from_slice(b"\xa1\xa1\xa1hJw");
    let err = parse(&String::from_utf8_lossy(&crash)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.is_ascii() && msg.len() < 400,
        "{} bytes: {msg}",
        msg.len()
    );
    assert!(msg.contains("\\u{fffd}"), "{msg}");
    // A look-alike letter and a bidi override are shown as escapes.
    let msg = parse("\u{430}lice\u{202e}").unwrap_err().to_string();
    assert!(msg.contains("\\u{430}lice\\u{202e}"), "{msg}");
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
