//! `berth env`: the shell lines that point AWS clients at a berth server.

use berth_server::config::default_data_dir;
use berth_server::credentials;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct EnvArgs {
    /// The server's data dir (where it wrote `endpoint` and `credentials.toml`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Region for clients to sign with.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Endpoint URL, when the data dir has none (the server writes it at start).
    #[arg(long)]
    endpoint: Option<String>,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn print(args: EnvArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.unwrap_or_else(default_data_dir);
    let endpoint = match args.endpoint {
        Some(e) => e,
        None => crate::client::endpoint_of(&dir),
    };
    let creds = credentials::stored(&dir)?;
    let Some(c) = creds.first() else {
        anyhow::bail!(
            "no credentials in {}: start `berth server --data-dir {}` once, or use your configured keys",
            dir.display(),
            dir.display()
        );
    };
    println!("export AWS_ENDPOINT_URL={}", quote(&endpoint));
    println!("export AWS_ACCESS_KEY_ID={}", quote(&c.access_key_id));
    println!(
        "export AWS_SECRET_ACCESS_KEY={}",
        quote(&c.secret_access_key)
    );
    println!("export AWS_DEFAULT_REGION={}", quote(&args.region));
    // An https server's certificate (self-signed, or of a private CA): the
    // aws-cli, boto3 and `berth agent` trust what AWS_CA_BUNDLE names.
    let bundle = dir.join(berth_server::CA_BUNDLE_FILE);
    if endpoint.starts_with("https://") && bundle.is_file() {
        let bundle = std::fs::canonicalize(&bundle).unwrap_or(bundle);
        println!("export AWS_CA_BUNDLE={}", quote(&bundle.to_string_lossy()));
    }
    println!("unset AWS_SESSION_TOKEN AWS_PROFILE");
    Ok(())
}
