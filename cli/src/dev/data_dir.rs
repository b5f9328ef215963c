//! Where `phirepass dev` keeps its data (SQLite database, service token, vault key, host key,
//! `dev.json`), and so where `phirepass admin` finds the running dev: one rule for both, so
//! `admin` works from any directory.
//!
//! 1. `--data-dir` or `PHIREPASS_DATA_DIR`;
//! 2. `.phirepass/` in the current directory, when it exists (where earlier versions kept it);
//! 3. `$XDG_DATA_HOME/phirepass`, else `~/.local/share/phirepass`.

use std::fmt;
use std::path::{Path, PathBuf};

pub const DATA_DIR_VAR: &str = "PHIREPASS_DATA_DIR";
/// The folder earlier versions created in the current directory.
pub const LEGACY_DIR: &str = ".phirepass";

/// Why this folder: the banner and the errors say it, so nobody wonders where the data went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--data-dir` or `PHIREPASS_DATA_DIR`.
    Given,
    /// `.phirepass/` found in the current directory.
    Legacy,
    /// The per-user default.
    PerUser,
}

#[derive(Debug, Clone)]
pub struct DataDir {
    pub path: PathBuf,
    pub origin: Origin,
}

impl DataDir {
    /// Resolves the rule above; `given` is the flag (clap already merged PHIREPASS_DATA_DIR in).
    pub fn resolve(
        given: Option<&Path>,
        var: impl Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<DataDir, String> {
        if let Some(path) = given.filter(|p| !p.as_os_str().is_empty()) {
            return Ok(DataDir {
                path: cwd.join(path),
                origin: Origin::Given,
            });
        }
        let legacy = cwd.join(LEGACY_DIR);
        if legacy.is_dir() {
            return Ok(DataDir {
                path: legacy,
                origin: Origin::Legacy,
            });
        }
        per_user(&var)
            .map(|path| DataDir {
                path,
                origin: Origin::PerUser,
            })
            .ok_or_else(|| {
                format!(
                    "no place for phirepass dev's data: set {DATA_DIR_VAR} (or pass --data-dir), \
                     XDG_DATA_HOME or HOME"
                )
            })
    }

    /// From the process's environment and current directory.
    pub fn from_env(given: Option<&Path>) -> Result<DataDir, String> {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?;
        DataDir::resolve(given, |name| std::env::var(name).ok(), &cwd)
    }
}

/// `$XDG_DATA_HOME/phirepass` (the spec ignores a relative XDG_DATA_HOME), else
/// `$HOME/.local/share/phirepass`.
fn per_user(var: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    let base = set("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| set("HOME").map(|home| Path::new(&home).join(".local/share")))?;
    Some(base.join("phirepass"))
}

impl fmt::Display for DataDir {
    /// The folder and why it was chosen, for dev's banner.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.origin {
            Origin::Given => write!(f, "{path} (from --data-dir or {DATA_DIR_VAR})"),
            Origin::PerUser => write!(
                f,
                "{path} (per user: `phirepass admin` finds it from any directory; \
                 {DATA_DIR_VAR} or --data-dir to use another)"
            ),
            Origin::Legacy => write!(
                f,
                "{path} (a {LEGACY_DIR} folder in the current directory, kept from earlier \
                 versions: `phirepass admin` finds it from this directory only, or with \
                 {DATA_DIR_VAR}={path}; move it to ~/.local/share/phirepass to have it found \
                 from anywhere)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn per_user_default_is_xdg_data_home_then_home() {
        let cwd = tempfile::tempdir().unwrap();
        let dir = DataDir::resolve(None, env(&[("HOME", "/home/a")]), cwd.path()).unwrap();
        assert_eq!(dir.path, Path::new("/home/a/.local/share/phirepass"));
        assert_eq!(dir.origin, Origin::PerUser);
        let vars = [("HOME", "/home/a"), ("XDG_DATA_HOME", "/data")];
        let dir = DataDir::resolve(None, env(&vars), cwd.path()).unwrap();
        assert_eq!(dir.path, Path::new("/data/phirepass"));
        // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
        let vars = [("HOME", "/home/a"), ("XDG_DATA_HOME", "rel")];
        let dir = DataDir::resolve(None, env(&vars), cwd.path()).unwrap();
        assert_eq!(dir.path, Path::new("/home/a/.local/share/phirepass"));
    }

    #[test]
    fn given_wins_over_legacy_and_per_user_and_is_made_absolute() {
        let cwd = tempfile::tempdir().unwrap();
        std::fs::create_dir(cwd.path().join(LEGACY_DIR)).unwrap();
        let vars = [("HOME", "/home/a")];
        let dir = DataDir::resolve(Some(Path::new("mine")), env(&vars), cwd.path()).unwrap();
        assert_eq!(dir.path, cwd.path().join("mine"));
        assert_eq!(dir.origin, Origin::Given);
        let dir = DataDir::resolve(Some(Path::new("/abs")), env(&vars), cwd.path()).unwrap();
        assert_eq!(dir.path, Path::new("/abs"));
    }

    #[test]
    fn a_legacy_folder_in_the_current_directory_is_kept_and_said() {
        let cwd = tempfile::tempdir().unwrap();
        std::fs::create_dir(cwd.path().join(LEGACY_DIR)).unwrap();
        let dir = DataDir::resolve(None, env(&[("HOME", "/home/a")]), cwd.path()).unwrap();
        assert_eq!(dir.path, cwd.path().join(LEGACY_DIR));
        assert_eq!(dir.origin, Origin::Legacy);
        assert!(dir.to_string().contains("earlier versions"), "{dir}");
        // A plain file of that name is not a data dir.
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(cwd.path().join(LEGACY_DIR), "").unwrap();
        let dir = DataDir::resolve(None, env(&[("HOME", "/home/a")]), cwd.path()).unwrap();
        assert_eq!(dir.origin, Origin::PerUser);
    }

    #[test]
    fn no_home_names_every_way_out() {
        let cwd = tempfile::tempdir().unwrap();
        let err = DataDir::resolve(None, env(&[]), cwd.path()).unwrap_err();
        for way in [DATA_DIR_VAR, "--data-dir", "XDG_DATA_HOME", "HOME"] {
            assert!(err.contains(way), "{err}");
        }
    }
}
