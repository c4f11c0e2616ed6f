//! `services.toml`: which services and operations berth speaks.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub service: Vec<Service>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// botocore's directory name, also the berth-wire module name.
    pub name: String,
    /// botocore's API version directory.
    pub version: String,
    /// Name of the generated service trait.
    pub api_trait: String,
    /// Modeled error code the trait's default methods answer.
    pub not_implemented: String,
    /// Answered instead by operations that do not model `not_implemented`
    /// (when they model this one), so every answer is a modeled error.
    pub not_implemented_fallback: Option<String>,
    /// Error code for a request member outside its modeled values (an
    /// unknown enum value).
    pub invalid_value: String,
    /// Operations to keep; `None` keeps all of them.
    pub operations: Option<Vec<String>>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}
