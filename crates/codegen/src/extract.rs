//! `extract`: botocore's service model → a compact, documentation-free,
//! stable extract of just the operations berth speaks (`model/<service>.json`).
//!
//! The extract keeps botocore's structure with one change: a structure's
//! `members` object becomes an array of `{"name": ..., ...}` entries, so the
//! model's member order survives the sorted-key output.

use crate::config;
use crate::json::{canonical, Ordered};
use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

/// Prose keys dropped wherever they appear (except as member names).
const PROSE: &[&str] = &[
    "documentation",
    "documentationUrl",
    "deprecatedMessage",
    "examples",
];

/// The metadata keys kept.
const METADATA: &[&str] = &[
    "apiVersion",
    "awsQueryCompatible",
    "endpointPrefix",
    "jsonVersion",
    "protocol",
    "serviceId",
    "signingName",
    "targetPrefix",
    "xmlNamespace",
];

/// An installed botocore.
pub struct Botocore {
    pub version: String,
    pub data_dir: PathBuf,
}

/// Finds botocore through `python3` (`$BERTH_PYTHON` overrides); `None` when
/// there is no Python or no botocore.
pub fn find_botocore() -> Option<Botocore> {
    let python = std::env::var("BERTH_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(python)
        .args([
            "-c",
            "import botocore,os;print(botocore.__version__);print(os.path.dirname(botocore.__file__))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let version = lines.next()?.trim().to_string();
    let dir = PathBuf::from(lines.next()?.trim()).join("data");
    Some(Botocore {
        version,
        data_dir: dir,
    })
}

/// Reads botocore's model for `svc` and returns the extract's text.
pub fn extract(bc: &Botocore, svc: &config::Service) -> Result<String> {
    let path = bc
        .data_dir
        .join(&svc.name)
        .join(&svc.version)
        .join("service-2.json.gz");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let model: Ordered = serde_json::from_reader(std::io::BufReader::new(GzDecoder::new(file)))
        .with_context(|| format!("parsing {}", path.display()))?;

    let all_ops: BTreeMap<&str, &Ordered> = model
        .get("operations")
        .map(Ordered::entries)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let shapes: BTreeMap<&str, &Ordered> = model
        .get("shapes")
        .map(Ordered::entries)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();

    let wanted: Vec<&str> = match &svc.operations {
        Some(ops) => ops.iter().map(String::as_str).collect(),
        None => all_ops.keys().copied().collect(),
    };

    let mut operations = Map::new();
    // EC2 models no errors at all: its not-implemented code is unmodeled.
    let mut roots: Vec<&str> = Some(svc.not_implemented.as_str())
        .filter(|n| shapes.contains_key(n))
        .into_iter()
        .collect();
    for name in wanted {
        let Some(op) = all_ops.get(name) else {
            bail!(
                "{}: operation {name} is not in botocore {}'s model",
                svc.name,
                bc.version
            );
        };
        for key in ["input", "output"] {
            if let Some(s) = op
                .get(key)
                .and_then(|r| r.get("shape"))
                .and_then(Ordered::as_str)
            {
                roots.push(s);
            }
        }
        for e in op.get("errors").map(Ordered::items).unwrap_or_default() {
            roots.extend(e.get("shape").and_then(Ordered::as_str));
        }
        operations.insert(name.to_string(), strip((*op).clone()).into_value());
    }

    let mut kept = BTreeSet::new();
    while let Some(name) = roots.pop() {
        if !kept.insert(name) {
            continue;
        }
        let Some(shape) = shapes.get(name) else {
            bail!("{}: shape {name} is referenced but not defined", svc.name);
        };
        for (_, m) in shape
            .get("members")
            .map(Ordered::entries)
            .unwrap_or_default()
        {
            roots.extend(m.get("shape").and_then(Ordered::as_str));
        }
        for key in ["member", "key", "value"] {
            roots.extend(
                shape
                    .get(key)
                    .and_then(|r| r.get("shape"))
                    .and_then(Ordered::as_str),
            );
        }
    }

    let mut out_shapes = Map::new();
    for name in kept {
        out_shapes.insert(name.to_string(), shape_value(shapes[name]));
    }

    let mut metadata = Map::new();
    for (k, v) in model
        .get("metadata")
        .map(Ordered::entries)
        .unwrap_or_default()
    {
        if METADATA.contains(&k.as_str()) {
            metadata.insert(k.clone(), v.clone().into_value());
        }
    }

    let mut doc = json!({
        "generatedBy": "berth-codegen extract; do not edit, regenerate",
        "botocoreVersion": bc.version,
        "service": svc.name,
        "metadata": metadata,
        "operations": operations,
        "shapes": out_shapes,
    });
    // Query and EC2 services answer an action of the model that berth does
    // not serve differently from one that does not exist (`InvalidAction`),
    // so their extract names the rest of the model's operations.
    let protocol = model
        .get("metadata")
        .and_then(|m| m.get("protocol"))
        .and_then(Ordered::as_str);
    if matches!(protocol, Some("query" | "ec2")) {
        let unserved: Vec<&str> = all_ops
            .keys()
            .copied()
            .filter(|op| {
                !doc["operations"]
                    .as_object()
                    .is_some_and(|o| o.contains_key(*op))
            })
            .collect();
        doc["unservedOperations"] = json!(unserved);
    }
    Ok(canonical(&doc))
}

/// One shape without prose, its members as an ordered array.
fn shape_value(shape: &Ordered) -> Value {
    let mut out = Map::new();
    for (k, v) in shape.entries() {
        if PROSE.contains(&k.as_str()) {
            continue;
        }
        let v = if k == "members" {
            Value::Array(
                v.entries()
                    .iter()
                    .map(|(name, m)| {
                        let mut m = match strip(m.clone()).into_value() {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        m.insert("name".to_string(), Value::String(name.clone()));
                        Value::Object(m)
                    })
                    .collect(),
            )
        } else {
            strip(v.clone()).into_value()
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// Drops prose keys recursively (callers never pass a `members` object).
fn strip(v: Ordered) -> Ordered {
    match v {
        Ordered::Object(entries) => Ordered::Object(
            entries
                .into_iter()
                .filter(|(k, _)| !PROSE.contains(&k.as_str()))
                .map(|(k, v)| (k, strip(v)))
                .collect(),
        ),
        Ordered::Array(items) => Ordered::Array(items.into_iter().map(strip).collect()),
        other => other,
    }
}
