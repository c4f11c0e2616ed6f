//! `berth server --managed-isolation`: how the embedded agent's process
//! runtime runs the FARGATE tasks of a server that holds several accounts.

use berth_runtime::process::{AccountIsolation, Tenancy};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ManagedIsolation {
    /// `none` for one account; for several, `users` when the server runs
    /// as root, else `refuse`.
    Auto,
    /// Each account's tasks run as an unprivileged uid of its own (needs root).
    Users,
    /// FARGATE tasks do not run as host processes: each stops at once with
    /// the reason as its stoppedReason.
    Refuse,
    /// Every task runs as the server's user: only when every account is trusted.
    None,
}

/// The tenancy of the embedded agent's process runtime, for a server with
/// `accounts` accounts whose agent keeps its state in `state_dir`.
pub fn managed(
    mode: ManagedIsolation,
    accounts: usize,
    uid_base: u32,
    data_dir: &Path,
    state_dir: &Path,
) -> anyhow::Result<Tenancy> {
    let root = berth_runtime::process::running_as_root();
    let refusal = |why: String| {
        Tenancy::Refused(format!(
            "{why}: FARGATE tasks would run as host processes with the server's privileges, \
             so they are refused (run berth server as root to run each account's tasks as a \
             uid of its own, or with --runtime docker)"
        ))
    };
    Ok(match mode {
        ManagedIsolation::None => Tenancy::Shared,
        ManagedIsolation::Auto if accounts <= 1 => Tenancy::Shared,
        ManagedIsolation::Auto if !root => refusal(format!(
            "this berth server holds {accounts} accounts and does not run as root"
        )),
        ManagedIsolation::Refuse => {
            refusal("this berth server runs with --managed-isolation refuse".into())
        }
        ManagedIsolation::Auto | ManagedIsolation::Users => {
            Tenancy::Isolated(AccountIsolation::new(
                uid_base,
                state_dir.join("account-uids.json"),
                scratch_root(data_dir)?,
            )?)
        }
    })
}

/// Where isolated tasks get their private directories: outside the data
/// dir (which they must not reach), one root per data dir.
fn scratch_root(data_dir: &Path) -> std::io::Result<std::path::PathBuf> {
    let dir = std::path::absolute(data_dir)?;
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
        });
    Ok(std::env::temp_dir().join(format!("berth-tasks-{hash:016x}")))
}
