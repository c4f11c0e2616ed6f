//! Starting the servers under test: `berth server` and moto, each in its own
//! temporary directory. A `Spawned` server is stopped (SIGTERM, then SIGKILL)
//! and its directory removed when it is dropped, including on error, panic
//! and ctrl-c (main turns ctrl-c into an early return).

use anyhow::{bail, Context};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Spawned {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// Leave the directory when stopped (it is restarted on).
    keep_dir: bool,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        stop(&mut self.child);
        if self.keep_dir {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("warning: removing {}: {e}", self.dir.display());
        }
        eprintln!("stopped {} (pid {})", self.name, self.child.id());
    }
}

/// SIGTERM, a few seconds to exit, then SIGKILL.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn make_temp_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.subsec_nanos();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Spawns `cmd` with its output going to `dir/server.log`. If spawning
/// fails, the directory is removed.
fn spawn(
    name: &'static str,
    mut cmd: Command,
    dir: PathBuf,
    access_key: &str,
    secret_key: &str,
) -> anyhow::Result<Spawned> {
    let spawned = File::create(dir.join("server.log"))
        .and_then(|log| Ok((log.try_clone()?, log)))
        .and_then(|(out, err)| cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn());
    match spawned {
        Ok(child) => Ok(Spawned {
            name,
            child,
            dir,
            endpoint: String::new(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            keep_dir: false,
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e).with_context(|| format!("starting {name} ({cmd:?})"))
        }
    }
}

impl Spawned {
    /// Stops the server and hands its data directory over (to start
    /// another on it with [`spawn_berth_in`]).
    pub fn stop_keeping_dir(mut self) -> PathBuf {
        self.keep_dir = true;
        self.dir.clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's data directory (berth: its store, keys and agent state).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fails if the process has exited, with the end of its log.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{} exited early ({status}):\n{}",
                self.name,
                tail.join("\n")
            );
        }
        Ok(())
    }

    async fn wait_until<T>(
        &mut self,
        what: &str,
        mut probe: impl FnMut(&Path) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(v) = probe(&self.dir) {
                return Ok(v);
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!("{} did not {what} within {START_TIMEOUT:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[derive(serde::Deserialize)]
struct CredentialsFile {
    credentials: Vec<CredentialEntry>,
}

#[derive(serde::Deserialize)]
struct CredentialEntry {
    access_key_id: String,
    secret_access_key: String,
}

/// `berth server --listen 127.0.0.1:0 --data-dir TMP [EXTRA...]`; waits
/// for `TMP/endpoint` and reads the generated `TMP/credentials.toml`.
pub async fn spawn_berth(bin: &Path, extra: &[&str]) -> anyhow::Result<Spawned> {
    spawn_berth_with_env(bin, extra, &[]).await
}

/// [`spawn_berth`] with extra environment variables (e.g. `BERTH_LOG`).
pub async fn spawn_berth_with_env(
    bin: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<Spawned> {
    spawn_berth_in(bin, make_temp_dir("berth-bench")?, extra, env).await
}

/// [`spawn_berth_with_env`] on an existing data directory (a restart);
/// the directory is removed when the server is dropped.
pub async fn spawn_berth_in(
    bin: &Path,
    dir: PathBuf,
    extra: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<Spawned> {
    // A previous server's endpoint file would be read as this one's.
    let _ = std::fs::remove_file(dir.join("endpoint"));
    let mut cmd = Command::new(bin);
    cmd.envs(env.iter().copied());
    cmd.arg("server")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .args(extra);
    // Credentials from the environment would stop berth from generating
    // the credentials file this harness reads.
    for var in [
        "BERTH_ACCESS_KEY_ID",
        "BERTH_SECRET_ACCESS_KEY",
        "BERTH_ACCOUNT_ID",
    ] {
        cmd.env_remove(var);
    }
    let mut s = spawn("berth", cmd, dir, "", "")?;
    let endpoint = s
        .wait_until("write its endpoint file", |dir| {
            let text = std::fs::read_to_string(dir.join("endpoint")).ok()?;
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        })
        .await?;
    let text = std::fs::read_to_string(s.dir.join("credentials.toml"))
        .context("reading berth's generated credentials.toml")?;
    let file: CredentialsFile = toml::from_str(&text).context("parsing credentials.toml")?;
    let cred = file
        .credentials
        .into_iter()
        .next()
        .context("credentials.toml has no [[credentials]] entry")?;
    s.endpoint = endpoint;
    s.access_key = cred.access_key_id;
    s.secret_key = cred.secret_access_key;
    Ok(s)
}

/// `python3 -m moto.server -H 127.0.0.1 -p PORT` on a free port; waits
/// until the port accepts connections. Moto accepts any credentials.
pub async fn spawn_moto(python: &str) -> anyhow::Result<Spawned> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = make_temp_dir("berth-bench-moto")?;
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ])
    .current_dir(&dir);
    let mut s = spawn("moto", cmd, dir, "testing", "testing")?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    s.wait_until("listen", |_| {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
    })
    .await?;
    s.endpoint = format!("http://{addr}");
    Ok(s)
}
