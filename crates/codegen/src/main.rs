//! berth-codegen: keeps berth-wire's generated types in step with the AWS
//! service models.
//!
//! * `extract`  botocore's models → `model/<service>.json` (shapes only).
//! * `generate` `model/*.json` → `crates/wire/src/<service>/*.rs`.
//! * `check`    fails if either would change what is on disk.

mod config;
mod extract;
mod json;
mod model;
mod names;
mod rust;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(about = "Generates berth-wire's AWS types from the service models")]
struct Cli {
    /// Workspace root (default: the one this crate was built in).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Re-extract model/<service>.json from the installed botocore.
    Extract,
    /// Regenerate crates/wire/src/<service>/ from model/<service>.json.
    Generate,
    /// Fail if `generate` (or `extract`, when the same botocore version is
    /// installed) would change anything on disk.
    Check,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = match cli.root {
        Some(r) => r,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    let root = root
        .canonicalize()
        .with_context(|| format!("workspace root {}", root.display()))?;
    let config = config::Config::load(&root.join("crates/codegen/services.toml"))?;
    match cli.cmd {
        Cmd::Extract => {
            let Some(bc) = extract::find_botocore() else {
                bail!("botocore is not installed (`pip install botocore`), or python3 is missing");
            };
            for svc in &config.service {
                let text = extract::extract(&bc, svc)?;
                let path = model_path(&root, &svc.name);
                write_if_changed(&path, &text)?;
            }
            println!(
                "extracted {} services from botocore {}",
                config.service.len(),
                bc.version
            );
        }
        Cmd::Generate => {
            for svc in &config.service {
                let dir = wire_dir(&root, &svc.name);
                std::fs::create_dir_all(&dir)?;
                let files = render(&root, svc)?;
                for f in &files {
                    write_if_changed(&dir.join(&f.name), &f.text)?;
                }
                for stale in stale_files(&dir, &files)? {
                    std::fs::remove_file(&stale)?;
                    println!("removed {}", stale.display());
                }
            }
        }
        Cmd::Check => check(&root, &config)?,
    }
    Ok(())
}

fn model_path(root: &Path, service: &str) -> PathBuf {
    root.join("model").join(format!("{service}.json"))
}

fn wire_dir(root: &Path, service: &str) -> PathBuf {
    root.join("crates/wire/src").join(service)
}

/// The formatted files of one service module, from its extract.
fn render(root: &Path, svc: &config::Service) -> Result<Vec<rust::File>> {
    let path = model_path(root, &svc.name);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (run `extract` first)", path.display()))?;
    let ex: model::Extract =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut files = rust::generate(&ex, svc)?;
    for f in &mut files {
        f.text = rust::format(&f.text, root).with_context(|| format!("formatting {}", f.name))?;
    }
    Ok(files)
}

/// `.rs` files in `dir` that generation no longer produces.
fn stale_files(dir: &Path, files: &[rust::File]) -> Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".rs") && !files.iter().any(|f| f.name == name) {
            stale.push(path);
        }
    }
    stale.sort();
    Ok(stale)
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn check(root: &Path, config: &config::Config) -> Result<()> {
    let mut problems = Vec::new();
    let differs = |path: &Path, want: &str| match std::fs::read_to_string(path) {
        Ok(have) if have == want => None,
        Ok(_) => Some(format!(
            "{} differs from what would be generated",
            path.display()
        )),
        Err(_) => Some(format!("{} is missing", path.display())),
    };
    let botocore = extract::find_botocore();
    for svc in &config.service {
        let model = model_path(root, &svc.name);
        let recorded = std::fs::read_to_string(&model)
            .ok()
            .and_then(|t| serde_json::from_str::<model::Extract>(&t).ok())
            .map(|e| e.botocore_version);
        match (&botocore, recorded) {
            (Some(bc), Some(v)) if bc.version == v => {
                problems.extend(differs(&model, &extract::extract(bc, svc)?))
            }
            (Some(bc), v) => println!(
                "note: {} was extracted from botocore {}, botocore {} is installed: checking only the Rust",
                model.display(),
                v.as_deref().unwrap_or("?"),
                bc.version
            ),
            (None, _) => println!("note: botocore is not installed: checking only the Rust for {}", svc.name),
        }
        let dir = wire_dir(root, &svc.name);
        let files = render(root, svc)?;
        for f in &files {
            problems.extend(differs(&dir.join(&f.name), &f.text));
        }
        for stale in stale_files(&dir, &files).unwrap_or_default() {
            problems.push(format!("{} is no longer generated", stale.display()));
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        bail!(
            "{} generated file(s) out of date: run `cargo run -p berth-codegen -- extract` \
             (if botocore changed) and `cargo run -p berth-codegen -- generate`",
            problems.len()
        );
    }
    println!("generated files are up to date");
    Ok(())
}
