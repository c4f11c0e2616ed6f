//! `environmentFiles`. On ECS each `value` is an S3 object ARN; berth has
//! no S3, so a value names a file on the agent's host (an absolute path,
//! or a `file://` URL) — but only in a directory the agent's operator
//! allows ([`EnvFileDirs`], `berth agent --allow-env-files DIR`), none by
//! default, as ECS's agent reads nothing from its host that its
//! configuration does not name. The format is ECS's: one `NAME=VALUE` per
//! line, `#` starts a comment line, blank lines are skipped, and nothing
//! is unquoted or expanded.
//!
//! A path is checked twice: as written, with `.` and `..` resolved
//! (before the file is touched, so a refused path tells nothing about the
//! host), and as the file really opened (`/proc/self/fd`: symlinks
//! resolved, with no window between the check and the read).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};

/// Larger files are refused (ECS allows 10 files of 1 MiB... per task).
const MAX_SIZE: u64 = 4 << 20;

/// The directories whose files tasks may name in `environmentFiles`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFileDirs {
    /// Each directory as given (made absolute, `.`/`..` resolved) and as
    /// it really is (symlinks resolved).
    dirs: Vec<(PathBuf, PathBuf)>,
}

impl EnvFileDirs {
    /// None: tasks may not read host files.
    pub fn none() -> Self {
        EnvFileDirs::default()
    }

    /// These directories (and what is under them); each must exist.
    pub fn new(dirs: &[PathBuf]) -> io::Result<Self> {
        let dirs = dirs
            .iter()
            .map(|d| {
                let real = d.canonicalize().map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("environment file directory {}: {e}", d.display()),
                    )
                })?;
                if !real.is_dir() {
                    return Err(io::Error::other(format!(
                        "environment file directory {} is not a directory",
                        d.display()
                    )));
                }
                let given = std::path::absolute(d).map(|a| normalize(&a))?;
                Ok((given, real))
            })
            .collect::<io::Result<_>>()?;
        Ok(EnvFileDirs { dirs })
    }

    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    fn allows_as_written(&self, path: &Path) -> bool {
        self.dirs
            .iter()
            .any(|(given, real)| path.starts_with(given) || path.starts_with(real))
    }

    fn allows_real(&self, path: &Path) -> bool {
        self.dirs.iter().any(|(_, real)| path.starts_with(real))
    }

    /// The directories, for messages.
    fn list(&self) -> String {
        let names: Vec<_> = self
            .dirs
            .iter()
            .map(|(g, _)| g.display().to_string())
            .collect();
        names.join(", ")
    }
}

/// `path` with `.` and `..` resolved lexically (`/..` is `/`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The variables in the file `value` names, if `allowed` allows it.
pub fn read(value: &str, allowed: &EnvFileDirs) -> Result<Vec<(String, String)>, String> {
    if value.starts_with("arn:") {
        return Err(format!(
            "environment file {value}: berth reads environment files from the agent's host, \
             not from S3; give an absolute path"
        ));
    }
    let path = value.strip_prefix("file://").unwrap_or(value);
    if !path.starts_with('/') {
        return Err(format!(
            "environment file {value}: the path must be absolute"
        ));
    }
    let refused = || {
        if allowed.is_empty() {
            format!(
                "environment file {value}: this agent reads no environment files from its host \
                 (its operator can allow directories with --allow-env-files)"
            )
        } else {
            format!(
                "environment file {value} is not in a directory this agent allows ({})",
                allowed.list()
            )
        }
    };
    if !allowed.allows_as_written(&normalize(Path::new(path))) {
        return Err(refused());
    }
    // Only a regular file is opened (a FIFO would hold the agent), and
    // checked again once open.
    let not_regular = || format!("environment file {path} is not a regular file");
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(not_regular()),
        Err(e) => return Err(format!("cannot read environment file {path}: {e}")),
    }
    let mut file =
        File::open(path).map_err(|e| format!("cannot read environment file {path}: {e}"))?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| format!("cannot read environment file {path}: {e}"))?;
    if !allowed.allows_real(&real) {
        return Err(refused());
    }
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read environment file {path}: {e}"))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > MAX_SIZE {
        return Err(format!(
            "environment file {path} is larger than {} MiB",
            MAX_SIZE >> 20
        ));
    }
    let mut text = String::new();
    (&mut file)
        .take(MAX_SIZE)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read environment file {path}: {e}"))?;
    Ok(parse(&text))
}

pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_values_and_skips_comments() {
        let vars = parse("# a comment\nA=1\n\nB=x=y\nC=\n  \nnoequals\n");
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "".into())
            ]
        );
    }

    #[test]
    fn refuses_s3_and_relative_paths() {
        let none = EnvFileDirs::none();
        assert!(read("arn:aws:s3:::bucket/env", &none)
            .unwrap_err()
            .contains("S3"));
        assert!(read("relative.env", &none)
            .unwrap_err()
            .contains("absolute"));
    }

    #[test]
    fn reads_only_what_an_allowed_directory_holds() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("allowed");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(allowed.join("sub/app.env"), "A=1\n").unwrap();
        std::fs::write(outside.join("secret.env"), "KEY=private\n").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.env"), allowed.join("link.env")).unwrap();
        std::os::unix::fs::symlink(&outside, allowed.join("dirlink")).unwrap();
        let dirs = EnvFileDirs::new(std::slice::from_ref(&allowed)).unwrap();
        let p = |rel: &str| format!("{}/{rel}", allowed.display());

        assert_eq!(
            read(&p("sub/app.env"), &dirs),
            Ok(vec![("A".into(), "1".into())])
        );
        assert_eq!(
            read(&format!("file://{}", p("sub/../sub/app.env")), &dirs),
            Ok(vec![("A".into(), "1".into())])
        );
        for escape in [
            p("../outside/secret.env"),
            p("link.env"),
            p("dirlink/secret.env"),
            outside.join("secret.env").display().to_string(),
            "/etc/passwd".into(),
        ] {
            let err = read(&escape, &dirs).unwrap_err();
            assert!(
                err.contains("not in a directory this agent allows"),
                "{escape}: {err}"
            );
        }
        // A missing file in an allowed directory is just missing.
        assert!(read(&p("absent.env"), &dirs)
            .unwrap_err()
            .contains("No such file"));
        // A directory is not a file.
        assert!(read(&p("sub"), &dirs)
            .unwrap_err()
            .contains("not a regular file"));

        // By default nothing at all.
        let err = read(&p("sub/app.env"), &EnvFileDirs::none()).unwrap_err();
        assert!(err.contains("--allow-env-files"), "{err}");
    }
}
