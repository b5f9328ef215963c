//! Typed parameters of a declared command and the checks every value passes before it can
//! become an argument: unknown names refused, required ones present, defaults applied, each
//! value checked against its type. Nothing here runs anything.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use regex::Regex;

/// Longest string value when a declaration sets no `max_len`.
pub const DEFAULT_MAX_LEN: usize = 256;

/// What a parameter accepts.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Any text up to `max_len` bytes matching `pattern` (the whole value) when one is set.
    String {
        pattern: Option<Pattern>,
        max_len: usize,
    },
    /// One of the listed values, exactly.
    Enum { values: Vec<String> },
    /// A base-10 integer within the bounds; passed on in canonical form (`+07` becomes `7`).
    Integer { min: Option<i64>, max: Option<i64> },
    /// A path that stays under `root` once `..` and symlinks are resolved; passed on resolved.
    /// `root` is canonical (checked at load).
    Path { root: PathBuf },
}

/// A compiled pattern that must match the whole value.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source` anchored at both ends (bounded size: a pattern cannot eat memory).
    pub fn new(source: &str) -> Result<Self, String> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("pattern {source:?} is not a valid regular expression: {e}"))?;
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

/// One declared parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: Kind,
    pub required: bool,
    pub secret: bool,
    pub default: Option<String>,
    pub description: String,
}

/// Checks `given` against `declared`: the values to template, defaults applied. The error is
/// the reason sent back to the caller (it never echoes a value: it may be a secret).
pub fn check(
    declared: &[Param],
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    if let Some(unknown) = given
        .keys()
        .find(|k| !declared.iter().any(|p| &p.name == *k))
    {
        let known: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
        return Err(format!(
            "unknown parameter {unknown:?} (this command takes: {})",
            if known.is_empty() {
                "no parameters".to_owned()
            } else {
                known.join(", ")
            }
        ));
    }
    let mut values = BTreeMap::new();
    for param in declared {
        let value = match (given.get(&param.name), &param.default) {
            (Some(v), _) => v.clone(),
            (None, Some(default)) => default.clone(),
            (None, None) if param.required => {
                return Err(format!("missing required parameter {:?}", param.name));
            }
            (None, None) => continue,
        };
        let checked = check_value(&param.kind, &value)
            .map_err(|why| format!("parameter {:?} {why}", param.name))?;
        values.insert(param.name.clone(), checked);
    }
    Ok(values)
}

/// Checks one value of `kind`; `Ok` is what the program receives.
pub fn check_value(kind: &Kind, value: &str) -> Result<String, String> {
    if value.contains('\0') {
        return Err("contains a NUL byte".to_owned());
    }
    match kind {
        Kind::Integer { min, max } => return check_integer(value, *min, *max),
        // Operator-declared values, compared exactly.
        Kind::Enum { values } if values.iter().any(|v| v == value) => return Ok(value.to_owned()),
        Kind::Enum { values } => {
            return Err(format!("must be one of: {}", values.join(", ")));
        }
        Kind::String { .. } | Kind::Path { .. } => {}
    }
    if value.chars().any(char::is_control) {
        return Err("contains a control character (newline, tab, ...): not allowed".to_owned());
    }
    if value.starts_with('-') {
        return Err(
            "starts with '-': it could be read as an option by the program, so it is refused"
                .to_owned(),
        );
    }
    match kind {
        Kind::String { pattern, max_len } => {
            if value.len() > *max_len {
                return Err(format!("is longer than {max_len} bytes"));
            }
            if let Some(pattern) = pattern
                && !pattern.is_match(value)
            {
                return Err(format!("does not match the pattern {:?}", pattern.source));
            }
            Ok(value.to_owned())
        }
        Kind::Path { root } => check_path(root, value),
        Kind::Integer { .. } | Kind::Enum { .. } => Ok(value.to_owned()),
    }
}

fn check_integer(value: &str, min: Option<i64>, max: Option<i64>) -> Result<String, String> {
    let trimmed = value.strip_prefix('+').unwrap_or(value);
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not an integer".to_owned());
    }
    let n: i64 = trimmed
        .parse()
        .map_err(|_| "is out of range for an integer".to_owned())?;
    if let Some(min) = min
        && n < min
    {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = max
        && n > max
    {
        return Err(format!("must be at most {max}"));
    }
    Ok(n.to_string())
}

/// `value` (absolute, or relative to `root`) normalised without touching the disk, then with
/// its existing part's symlinks resolved; it must stay under `root` both ways.
fn check_path(root: &Path, value: &str) -> Result<String, String> {
    let outside = || format!("must stay under {}", root.display());
    let lexical = normalize(&root.join(value)).ok_or_else(outside)?;
    if !lexical.starts_with(root) {
        return Err(outside());
    }
    let resolved = resolve_existing(&lexical).map_err(|e| format!("cannot be resolved: {e}"))?;
    if !resolved.starts_with(root) {
        return Err(format!("{} (through a symlink)", outside()));
    }
    resolved
        .into_os_string()
        .into_string()
        .map_err(|_| "resolves to a path that is not UTF-8".to_owned())
}

/// Removes `.` and resolves `..` lexically; `None` when `..` climbs above `/`.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(part) => out.push(part),
        }
    }
    Some(out)
}

/// The canonical form of the longest existing prefix of `path`, with the rest appended.
fn resolve_existing(path: &Path) -> std::io::Result<PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(canonical) => {
                let mut out = canonical;
                out.extend(rest.iter().rev());
                return Ok(out);
            }
            // A dangling symlink would let the program create a file wherever it points.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if existing.symlink_metadata().is_ok() {
                    return Err(std::io::Error::other("it is a dangling symlink"));
                }
            }
            Err(e) => return Err(e),
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(path.to_owned()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "params_tests.rs"]
mod tests;
