//! Argument templates: each element of a declared `args` list is either a literal or exactly
//! one `{param}` placeholder, which becomes exactly one argv element. A placeholder is never
//! spliced into a larger string, so no value can turn into two arguments or part of one.

use std::collections::{BTreeMap, BTreeSet};

/// One element of a command's argument template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Passed as written (`{{` and `}}` stand for literal braces).
    Literal(String),
    /// The value of this parameter, as one whole argument; omitted when the parameter is
    /// optional, has no default and was not given.
    Param(String),
}

/// Parses a declared template; `declared` are the command's parameter names. Every placeholder
/// must name a declared parameter and every parameter must appear exactly once.
pub fn parse(args: &[String], declared: &BTreeSet<&str>) -> Result<Vec<Arg>, String> {
    let mut used = BTreeSet::new();
    let mut out = Vec::with_capacity(args.len());
    for (index, raw) in args.iter().enumerate() {
        let arg = parse_one(raw).map_err(|why| format!("args[{index}] = {raw:?}: {why}"))?;
        if let Arg::Param(name) = &arg {
            if !declared.contains(name.as_str()) {
                return Err(format!(
                    "args[{index}] uses {{{name}}} but no parameter {name:?} is declared: add a [[command.params]] entry named {name:?} or fix the placeholder"
                ));
            }
            if !used.insert(name.clone()) {
                return Err(format!(
                    "args[{index}]: {{{name}}} appears twice; use each parameter once"
                ));
            }
        }
        out.push(arg);
    }
    if let Some(unused) = declared.iter().find(|name| !used.contains(**name)) {
        return Err(format!(
            "parameter {unused:?} is declared but args has no \"{{{unused}}}\" element: add it to args or remove the parameter"
        ));
    }
    Ok(out)
}

fn parse_one(raw: &str) -> Result<Arg, String> {
    if let Some(inner) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
        && !inner.starts_with('{')
    {
        if phirepass_tunnel::command::valid_name(inner) {
            return Ok(Arg::Param(inner.to_owned()));
        }
        return Err(format!(
            "{{{inner}}} is not a parameter name (lowercase letters, digits, _ and -, starting with a letter)"
        ));
    }
    // A literal: only doubled braces are allowed, so a placeholder can never hide in it.
    let mut literal = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                literal.push(c);
            }
            '{' | '}' => {
                return Err(
                    "a placeholder must be a whole argument (\"{name}\"), never part of one; split it into its own element, or write {{ and }} for literal braces"
                        .to_owned(),
                );
            }
            _ => literal.push(c),
        }
    }
    Ok(Arg::Literal(literal))
}

/// The argv (without the program) for checked `values`.
pub fn render(template: &[Arg], values: &BTreeMap<String, String>) -> Vec<String> {
    template
        .iter()
        .filter_map(|arg| match arg {
            Arg::Literal(s) => Some(s.clone()),
            Arg::Param(name) => values.get(name).cloned(),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn placeholders_are_whole_elements() {
        let declared = BTreeSet::from(["mount", "lines"]);
        let t = parse(&strings(&["-h", "{mount}", "--", "{lines}"]), &declared).unwrap();
        assert_eq!(t[1], Arg::Param("mount".into()));
        let values = BTreeMap::from([("mount".to_owned(), "/ ; rm -rf /".to_owned())]);
        // The value is one element; the absent optional parameter leaves no element.
        assert_eq!(render(&t, &values), strings(&["-h", "/ ; rm -rf /", "--"]));
    }

    #[test]
    fn spliced_or_unknown_placeholders_are_refused() {
        let declared = BTreeSet::from(["n"]);
        for bad in ["--lines={n}", "x{n}", "{n}x", "{ n }", "{N}", "{", "a}b"] {
            let err = parse(&strings(&[bad]), &declared).unwrap_err();
            assert!(err.contains("args[0]"), "{bad}: {err}");
        }
        let err = parse(&strings(&["{m}"]), &declared).unwrap_err();
        assert!(err.contains("no parameter \"m\""), "{err}");
        let err = parse(&strings(&["{n}", "{n}"]), &declared).unwrap_err();
        assert!(err.contains("twice"), "{err}");
        let err = parse(&strings(&["-x"]), &declared).unwrap_err();
        assert!(err.contains("\"n\" is declared but"), "{err}");
    }

    #[test]
    fn doubled_braces_are_literal() {
        let t = parse(&strings(&["--format", "{{.Names}}"]), &BTreeSet::new()).unwrap();
        assert_eq!(
            render(&t, &BTreeMap::new()),
            strings(&["--format", "{.Names}"])
        );
    }
}
