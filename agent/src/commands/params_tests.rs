use super::*;

fn string(pattern: Option<&str>, max_len: usize) -> Kind {
    Kind::String {
        pattern: pattern.map(|p| Pattern::new(p).unwrap()),
        max_len,
    }
}

fn param(name: &str, kind: Kind, required: bool, default: Option<&str>) -> Param {
    Param {
        name: name.into(),
        kind,
        required,
        secret: false,
        default: default.map(Into::into),
        description: String::new(),
    }
}

fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn unknown_missing_and_defaults() {
    let declared = [
        param("unit", string(Some("[a-z.-]+"), 64), true, None),
        param(
            "lines",
            Kind::Integer {
                min: Some(1),
                max: Some(500),
            },
            false,
            Some("50"),
        ),
        param("since", string(None, 32), false, None),
    ];
    let err = check(&declared, &given(&[("unit", "nginx"), ("evil", "x")])).unwrap_err();
    assert!(
        err.contains("unknown parameter \"evil\"") && err.contains("unit, lines, since"),
        "{err}"
    );
    let err = check(&declared, &given(&[])).unwrap_err();
    assert_eq!(err, "missing required parameter \"unit\"");
    let values = check(&declared, &given(&[("unit", "nginx")])).unwrap();
    assert_eq!(values, given(&[("unit", "nginx"), ("lines", "50")]));
}

#[test]
fn strings_refuse_injection_shapes_without_echoing_the_value() {
    let kind = string(Some("[A-Za-z0-9 ;$()`/|&.-]+"), 64);
    // Shell metacharacters are just characters: the pattern decides, no shell ever sees them.
    assert_eq!(check_value(&kind, "; rm -rf /").unwrap(), "; rm -rf /");
    assert_eq!(check_value(&kind, "$(id)").unwrap(), "$(id)");
    assert_eq!(check_value(&kind, "`id`").unwrap(), "`id`");
    let cases = [
        ("a\nb", "control character"),
        ("a\rb", "control character"),
        ("a\0b", "NUL"),
        ("--flag", "could be read as an option"),
        ("-rf", "could be read as an option"),
        (&"x".repeat(65), "longer than 64"),
        ("a#b", "does not match the pattern"),
    ];
    for (value, why) in cases {
        let err = check_value(&kind, value).unwrap_err();
        assert!(err.contains(why), "{value:?}: {err}");
        assert!(!err.contains(value), "the reason echoes the value: {err}");
    }
}

#[test]
fn patterns_match_the_whole_value() {
    let kind = string(Some("[a-z]+"), 64);
    assert!(check_value(&kind, "abc").is_ok());
    assert!(check_value(&kind, "abc def").is_err());
    assert!(check_value(&kind, "ABC").is_err());
    assert!(
        Pattern::new("(")
            .unwrap_err()
            .contains("not a valid regular expression")
    );
}

#[test]
fn enums_and_integers() {
    let kind = Kind::Enum {
        values: vec!["start".into(), "stop".into()],
    };
    assert_eq!(check_value(&kind, "stop").unwrap(), "stop");
    assert!(
        check_value(&kind, "stop ")
            .unwrap_err()
            .contains("one of: start, stop")
    );
    let kind = Kind::Integer {
        min: Some(-10),
        max: Some(100),
    };
    assert_eq!(check_value(&kind, "+007").unwrap(), "7");
    assert_eq!(check_value(&kind, "-5").unwrap(), "-5");
    for (bad, why) in [
        ("-11", "at least -10"),
        ("101", "at most 100"),
        ("1e3", "not an integer"),
        ("", "not an integer"),
        ("--5", "not an integer"),
        ("5 ", "not an integer"),
        ("99999999999999999999", "out of range"),
    ] {
        let err = check_value(&kind, bad).unwrap_err();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn paths_stay_under_their_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("logs");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/today.log"), "x").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc/phirepass-nothing", root.join("dangling")).unwrap();
    let kind = Kind::Path { root: root.clone() };
    let ok = |v: &str| check_value(&kind, v).unwrap();
    let inside = root.join("app/today.log").display().to_string();
    assert_eq!(ok("app/today.log"), inside);
    assert_eq!(ok("./app/../app/today.log"), inside);
    assert_eq!(ok(&inside), inside);
    assert_eq!(
        ok("app/new.log"),
        root.join("app/new.log").display().to_string()
    );
    for (bad, why) in [
        ("../secret", "must stay under"),
        ("app/../../secret", "must stay under"),
        ("/etc/passwd", "must stay under"),
        ("../../../../../../..", "must stay under"),
        ("escape/passwd", "through a symlink"),
        ("escape", "through a symlink"),
        ("dangling", "dangling symlink"),
        ("-rf", "could be read as an option"),
        ("a\nb", "control character"),
    ] {
        let err = check_value(&kind, bad).unwrap_err();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}
