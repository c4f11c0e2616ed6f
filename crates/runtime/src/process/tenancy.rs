//! Whose processes run with whose privileges. The process runtime is no
//! sandbox: a process sees the host as its user may. On a host that runs
//! the tasks of one account (a `berth agent`, or `berth server` with one
//! account) that is the account's own business; on a server that holds
//! several accounts, a task running as the server's user could read the
//! server's data dir (its keys, its store) and the other accounts' tasks.
//! So there, each account's tasks run as a uid of its own
//! ([`AccountIsolation`]), or are refused.

use crate::{ContainerSpec, LABEL_TASK_ARN};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Whether this process runs as root (and so can run tasks as others).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and has no memory effects.
    unsafe { libc::geteuid() == 0 }
}

/// How the process runtime runs tasks of different accounts.
#[derive(Debug, Default)]
pub enum Tenancy {
    /// As the agent's user (or the container's `user`): the host trusts
    /// every account whose tasks it runs.
    #[default]
    Shared,
    /// Each account's tasks run as an unprivileged uid of their own.
    Isolated(AccountIsolation),
    /// No task runs; each fails to start with this reason.
    Refused(String),
}

impl Tenancy {
    /// What it means, in a sentence, for the operator.
    pub fn describe(&self) -> String {
        match self {
            Tenancy::Shared => "tasks run as the agent's user (or their `user`)".into(),
            Tenancy::Isolated(i) => format!(
                "each account's tasks run as an unprivileged uid of its own (from {}), with no \
                 new privileges, in a private directory under {}; `user` is refused",
                i.uid_base,
                i.scratch_root.display()
            ),
            Tenancy::Refused(reason) => format!("tasks are refused: {reason}"),
        }
    }
}

/// Runs each account's tasks as a uid of its own: `uid_base`, `uid_base +
/// 1`, … in the order accounts first run a task here (kept in
/// `uids_file`, so an account keeps its uid across restarts; uids that
/// `/etc/passwd` names are skipped). The gid is the uid, with no
/// supplementary groups, and `no_new_privs` is set, so setuid programs do
/// not raise it. Each task gets a private directory, `scratch_root/<task
/// id>` (mode 0700, owned by its uid), as its working directory (unless
/// it names one), `HOME` and `TMPDIR`; it is removed with the task's last
/// container. Needs root.
#[derive(Debug)]
pub struct AccountIsolation {
    uid_base: u32,
    uids_file: PathBuf,
    scratch_root: PathBuf,
    uids: Mutex<()>,
}

/// How many uids may be handed out.
const MAX_ACCOUNTS: u32 = 1 << 20;

impl AccountIsolation {
    /// Checks `scratch_root` (created 0711, owned by this user; an
    /// existing one must be a directory of this user writable by no one
    /// else, so no one can plant a link in it).
    pub fn new(uid_base: u32, uids_file: PathBuf, scratch_root: PathBuf) -> io::Result<Self> {
        // SAFETY: geteuid(2) cannot fail and has no memory effects.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(io::Error::other(format!(
                "running tasks as other users needs root (the agent runs as uid {euid})"
            )));
        }
        if uid_base == 0 || uid_base.checked_add(MAX_ACCOUNTS).is_none() {
            return Err(io::Error::other(format!(
                "uid base {uid_base} leaves no room for {MAX_ACCOUNTS} accounts"
            )));
        }
        match fs::DirBuilder::new().mode(0o711).create(&scratch_root) {
            Ok(()) => fs::set_permissions(&scratch_root, fs::Permissions::from_mode(0o711))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = fs::symlink_metadata(&scratch_root)?;
        if !meta.is_dir() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
            return Err(io::Error::other(format!(
                "{} must be a directory of uid {euid} that no one else can write to",
                scratch_root.display()
            )));
        }
        // The tasks' users must reach their directories.
        for dir in scratch_root.ancestors().skip(1) {
            let mode = fs::metadata(dir)?.mode();
            if mode & 0o001 == 0 {
                return Err(io::Error::other(format!(
                    "{} is not searchable by other users, so tasks running as them could not \
                     reach their directories under {} (set TMPDIR elsewhere)",
                    dir.display(),
                    scratch_root.display()
                )));
            }
        }
        Ok(AccountIsolation {
            uid_base,
            uids_file,
            scratch_root,
            uids: Mutex::new(()),
        })
    }

    /// The uid of `account`, handed out on first use.
    pub fn uid_of(&self, account: &str) -> io::Result<u32> {
        let _one_at_a_time = self.uids.lock();
        let mut map: BTreeMap<String, u32> = match fs::read(&self.uids_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        if let Some(uid) = map.get(account) {
            return Ok(*uid);
        }
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let named = |uid: u32| {
            passwd
                .lines()
                .any(|l| l.split(':').nth(2) == Some(&uid.to_string()))
        };
        let taken: Vec<u32> = map.values().copied().collect();
        let uid = (self.uid_base..self.uid_base + MAX_ACCOUNTS)
            .find(|u| !taken.contains(u) && !named(*u))
            .ok_or_else(|| io::Error::other("no uid left for another account"))?;
        map.insert(account.to_string(), uid);
        let bytes = serde_json::to_vec_pretty(&map).map_err(io::Error::other)?;
        super::state::write_atomic(&self.uids_file, &bytes)?;
        Ok(uid)
    }

    /// `spec` as it runs here: as its account's uid, in its task's private
    /// directory (created now).
    pub fn confine(&self, spec: &ContainerSpec) -> Result<ContainerSpec, String> {
        let account = spec
            .labels
            .get(LABEL_TASK_ARN)
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|a| !a.is_empty())
            .ok_or("the process runtime cannot tell the task's account from its ARN")?;
        let uid = self
            .uid_of(account)
            .map_err(|e| format!("cannot give account {account} a uid: {e}"))?;
        if let Some(user) = &spec.user {
            return Err(format!(
                "this host runs the tasks of several accounts as host processes, each account \
                 as a uid of its own (account {account}: uid {uid}): a container `user` \
                 ({user}) is not supported here"
            ));
        }
        let dir = self.scratch_dir(&spec.key.task_id, uid)?;
        let dir_str = dir.to_string_lossy().into_owned();
        let mut confined = spec.clone();
        confined.user = Some(format!("{uid}:{uid}"));
        if confined.working_directory.is_none() {
            confined.working_directory = Some(dir_str.clone());
        }
        for var in ["HOME", "TMPDIR"] {
            if !confined.environment.iter().any(|(k, _)| k == var) {
                confined.environment.push((var.into(), dir_str.clone()));
            }
        }
        Ok(confined)
    }

    fn scratch_dir(&self, task_id: &str, uid: u32) -> Result<PathBuf, String> {
        let dir = self.scratch_root.join(task_id);
        let made = fs::DirBuilder::new().mode(0o700).create(&dir);
        let fail = |e: io::Error| format!("cannot create the task's directory: {e}");
        match made {
            Ok(()) => std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).map_err(fail)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Another container of the task made it.
                let meta = fs::symlink_metadata(&dir).map_err(fail)?;
                if !meta.is_dir() || meta.uid() != uid {
                    return Err(format!("{} is not the task's own directory", dir.display()));
                }
            }
            Err(e) => return Err(fail(e)),
        }
        Ok(dir)
    }

    /// Removes a task's private directory (with what its processes left).
    pub fn remove_task(&self, task_id: &str) {
        let dir = self.scratch_root.join(task_id);
        if let Err(e) = fs::remove_dir_all(&dir) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", dir.display());
            }
        }
    }

    pub fn scratch_root(&self) -> &Path {
        &self.scratch_root
    }
}
