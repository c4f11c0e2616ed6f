//! Where the server's credentials come from: the config file and the
//! environment, or, when neither names any, a key pair generated into the
//! data directory on first start.

use crate::config::{CredentialEntry, ServerConfig};
use anyhow::Context;
use berth_auth::Credential;
use rand::Rng;
use std::io::Write;
use std::path::Path;

pub const CREDENTIALS_FILE: &str = "credentials.toml";

#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct CredentialsFile {
    credentials: Vec<CredentialEntry>,
}

pub struct Resolved {
    pub credentials: Vec<Credential>,
    /// Set when a key pair was just generated: tells the user where it is.
    pub generated_note: Option<String>,
}

fn to_credential(e: &CredentialEntry) -> Credential {
    Credential {
        access_key_id: e.access_key_id.clone(),
        secret_access_key: e.secret_access_key.clone(),
        account_id: e.account_id.clone(),
        principal_arn: e
            .principal_arn
            .clone()
            .unwrap_or_else(|| berth_core::arn::root_principal(&e.account_id)),
    }
}

/// The credentials stored in a data directory, if any.
pub fn stored(data_dir: &Path) -> anyhow::Result<Vec<CredentialEntry>> {
    let path = data_dir.join(CREDENTIALS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let f: CredentialsFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(f.credentials)
}

/// How many accounts a server with `configured` credentials (from its
/// config file and environment) and `data_dir` serves: those credentials'
/// accounts, else the stored ones', else the one generated at first start.
pub fn account_count(configured: &[CredentialEntry], data_dir: &Path) -> anyhow::Result<usize> {
    let stored;
    let entries = if configured.is_empty() {
        stored = self::stored(data_dir)?;
        &stored
    } else {
        configured
    };
    let accounts: std::collections::BTreeSet<&str> =
        entries.iter().map(|e| e.account_id.as_str()).collect();
    Ok(accounts.len().max(1))
}

pub fn resolve(config: &ServerConfig) -> anyhow::Result<Resolved> {
    for e in &config.credentials {
        validate(e)?;
    }
    if !config.credentials.is_empty() {
        let credentials = config.credentials.iter().map(to_credential).collect();
        return Ok(Resolved {
            credentials,
            generated_note: None,
        });
    }
    let mut entries = stored(&config.data_dir)?;
    let mut generated_note = None;
    if entries.is_empty() {
        let e = generate();
        let path = config.data_dir.join(CREDENTIALS_FILE);
        let text = toml::to_string(&CredentialsFile {
            credentials: vec![e.clone()],
        })?;
        write_atomically(&path, text.as_bytes())?;
        generated_note = Some(format!(
            "no credentials were configured: generated access key {} for account {} into {}",
            e.access_key_id,
            e.account_id,
            path.display()
        ));
        entries.push(e);
    }
    Ok(Resolved {
        credentials: entries.iter().map(to_credential).collect(),
        generated_note,
    })
}

fn validate(e: &CredentialEntry) -> anyhow::Result<()> {
    anyhow::ensure!(
        !e.access_key_id.is_empty(),
        "a credential has an empty access_key_id"
    );
    anyhow::ensure!(
        !e.secret_access_key.is_empty(),
        "credential {} has an empty secret",
        e.access_key_id
    );
    anyhow::ensure!(
        e.account_id.len() == 12 && e.account_id.bytes().all(|b| b.is_ascii_digit()),
        "credential {}: account_id must be 12 digits",
        e.access_key_id
    );
    Ok(())
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

fn generate() -> CredentialEntry {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut account = random_string(12, b"0123456789");
    account.replace_range(0..1, "1"); // no leading zero
    CredentialEntry {
        access_key_id: format!("AKIA{}", random_string(16, UPPER)),
        secret_access_key: random_string(40, SECRET),
        account_id: account,
        principal_arn: None,
        policy: None,
        policy_file: None,
    }
}

/// A random key kept in the data dir (created on first use, mode 0600).
pub fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(k) = std::fs::read(path) {
        if k.len() >= 32 {
            return Ok(k);
        }
    }
    let key: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    write_atomically(path, &key)?;
    Ok(key)
}

/// Writes via a temporary file and rename, so readers never see half a
/// file; secrets are created readable by the owner only.
pub fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
