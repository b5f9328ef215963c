//! The node token: its shape, where it lives, and how it is stored.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Overrides the token file location.
pub const TOKEN_FILE_VAR: &str = "PHIREPASS_AGENT_TOKEN_FILE";
/// When set, `start` uses this token instead of the file.
pub const PAT_TOKEN_VAR: &str = "PAT_TOKEN";

const PREFIX: &str = "pp_node_";
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

/// Token input, storage and lookup failures. Messages never include the
/// token itself.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("not a node token: expected pp_node_<16 hex>_<64 hex> (lowercase)")]
    Malformed,
    #[error("no token given")]
    Empty,
    #[error("cannot find a token file location: set {TOKEN_FILE_VAR}, XDG_CONFIG_HOME or HOME")]
    NoLocation,
    #[error("no node token at {path}: run `phirepass-agent login` first")]
    NotFound { path: PathBuf },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the token: {0}")]
    Input(std::io::Error),
}

/// Checks the `pp_node_<16 hex>_<64 hex>` shape.
pub fn validate(token: &str) -> Result<(), TokenError> {
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(TokenError::Malformed)?;
    if hex(id, ID_HEX) && hex(secret, SECRET_HEX) {
        Ok(())
    } else {
        Err(TokenError::Malformed)
    }
}

/// Trims surrounding whitespace (a trailing newline from `echo`) and
/// validates.
pub fn normalize(raw: &str) -> Result<String, TokenError> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    validate(token)?;
    Ok(token.to_owned())
}

/// The token file: `$PHIREPASS_AGENT_TOKEN_FILE`, else
/// `$XDG_CONFIG_HOME/phirepass/agent.token`, else
/// `~/.config/phirepass/agent.token`.
pub fn default_path(lookup: impl Fn(&str) -> Option<String>) -> Result<PathBuf, TokenError> {
    let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
    if let Some(file) = get(TOKEN_FILE_VAR) {
        return Ok(PathBuf::from(file));
    }
    let config_dir = match get("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(get("HOME").ok_or(TokenError::NoLocation)?).join(".config"),
    };
    Ok(config_dir.join("phirepass").join("agent.token"))
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TokenError {
    let path = path.to_owned();
    move |source| TokenError::Io {
        action,
        path,
        source,
    }
}

/// Writes the token with mode 0600 (directories it creates get 0700),
/// atomically: a temporary file in the same directory is renamed over it.
pub fn store(path: &Path, token: &str) -> Result<(), TokenError> {
    validate(token)?;
    write_private(path, token)
}

/// Writes `token` and a newline to `path` as [`store`] does (0600, atomic), without
/// checking its shape: for other credentials, such as the `phirepass` CLI's API token.
pub fn write_private(path: &Path, token: &str) -> Result<(), TokenError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io("cannot create directory", &dir))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp); // a leftover from a crashed run
    let write = || -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask may have narrowed the mode further, never widened it;
        // set it exactly anyway.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(io("cannot write", &tmp)(e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("cannot replace", path)(e)
    })
}

/// Reads and validates the stored token. Warns when the file is readable
/// by group or others.
pub fn load(path: &Path) -> Result<String, TokenError> {
    let raw = match fs::read_to_string(path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TokenError::NotFound {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io("cannot read", path)(e)),
    };
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "token file is accessible by other users; chmod 600 it");
    }
    normalize(&raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) const GOOD: &str =
        "pp_node_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_the_documented_shape() {
        assert!(validate(GOOD).is_ok());
        assert_eq!(normalize(&format!("  {GOOD}\n")).unwrap(), GOOD);
    }

    #[test]
    fn rejects_other_shapes() {
        let upper = GOOD.replace('a', "A");
        let short_id = GOOD.replacen("0123456789abcdef_", "0123456789abcde_", 1);
        let long_secret = format!("{GOOD}0");
        let bad = [
            "",
            "pp_node_",
            &GOOD[3..],
            &upper,
            &short_id,
            &long_secret,
            "pp_node_0123456789abcdef",
            "pp_api_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ];
        for b in bad {
            assert!(validate(b).is_err(), "{b}");
        }
        assert!(matches!(normalize(" \n"), Err(TokenError::Empty)));
    }

    #[test]
    fn error_never_echoes_the_token() {
        let almost = format!("{GOOD}X");
        let msg = normalize(&almost).unwrap_err().to_string();
        assert!(!msg.contains(&almost[8..]), "{msg}");
    }

    #[test]
    fn default_path_precedence() {
        let lookup = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let all = lookup(&[
            (TOKEN_FILE_VAR, "/t/agent"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(default_path(all).unwrap(), PathBuf::from("/t/agent"));
        let xdg = lookup(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(
            default_path(xdg).unwrap(),
            PathBuf::from("/x/phirepass/agent.token")
        );
        let home = lookup(&[(TOKEN_FILE_VAR, ""), ("HOME", "/h")]);
        assert_eq!(
            default_path(home).unwrap(),
            PathBuf::from("/h/.config/phirepass/agent.token")
        );
        assert!(matches!(
            default_path(lookup(&[])),
            Err(TokenError::NoLocation)
        ));
    }

    #[test]
    fn store_sets_modes_and_load_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/agent.token");
        store(&path, GOOD).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(load(&path).unwrap(), GOOD);

        // Overwriting an existing, too-open file tightens it.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        store(&path, GOOD).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn load_missing_file_says_to_login() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("none")).unwrap_err().to_string();
        assert!(err.contains("phirepass-agent login"), "{err}");
    }

    #[test]
    fn store_refuses_malformed_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.token");
        assert!(store(&path, "nope").is_err());
        assert!(!path.exists());
    }
}
