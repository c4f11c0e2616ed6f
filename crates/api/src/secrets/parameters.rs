//! SSM Parameter Store: PutParameter, GetParameter, GetParameters,
//! GetParametersByPath, DeleteParameter, DeleteParameters,
//! DescribeParameters.
//!
//! A parameter is one document keyed by its name holding the latest
//! version only (selectors name only that version). SecureString values are
//! sealed by the vault; without `WithDecryption` they are answered with the
//! sealed blob itself (base64), as AWS answers with the KMS ciphertext.

use super::parameter_rules::*;
use super::{internal, mutate, now, scan, Change, Vault};
use crate::records::{load, scope, Record, Versioned};
use berth_core::pagination::{PageKey, TokenCodec};
use berth_store::Store;
use berth_wire::ssm::*;
use berth_wire::{ApiError, RequestContext, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const FAULT: &str = "InternalServerError";
const DEFAULT_KEY: &str = "alias/aws/ssm";

/// Parameter Store over one store.
#[derive(Clone)]
pub struct ParameterStore {
    store: Arc<dyn Store>,
    tokens: TokenCodec,
    vault: Vault,
}

#[derive(Serialize, Deserialize, Clone)]
pub(super) struct Param {
    pub(super) name: String,
    pub(super) r#type: ParameterType,
    /// Plain for String and StringList, sealed for SecureString.
    pub(super) value: String,
    pub(super) version: i64,
    pub(super) description: Option<String>,
    pub(super) key_id: Option<String>,
    pub(super) tier: ParameterTier,
    pub(super) modified: f64,
    pub(super) modified_by: String,
    pub(super) tags: Vec<Tag>,
}

impl Record for Param {
    const KIND: &'static str = "ssm-parameter";
    fn id(&self) -> String {
        self.name.clone()
    }
}

impl ParameterStore {
    /// `token_key` signs pagination tokens; `vault` seals SecureStrings.
    pub fn new(store: Arc<dyn Store>, token_key: Vec<u8>, vault: Vault) -> Self {
        ParameterStore {
            store,
            tokens: TokenCodec::new(token_key),
            vault,
        }
    }

    fn context<'a>(ctx: &'a RequestContext, name: &'a str, version: &'a str) -> [&'a str; 5] {
        ["ssm", &ctx.account_id, &ctx.region, name, version]
    }

    /// The value as answered: SecureStrings opened only when asked to.
    fn value(&self, ctx: &RequestContext, p: &Param, decrypt: bool) -> Result<String, ApiError> {
        if !is_secure(&p.r#type) || !decrypt {
            return Ok(p.value.clone());
        }
        let version = p.version.to_string();
        self.vault
            .open(&Self::context(ctx, &p.name, &version), &p.value)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                tracing::error!(parameter = %p.name, "a SecureString does not decrypt");
                ApiError::client("InvalidKeyId", "The parameter could not be decrypted.")
            })
    }

    fn parameter(
        &self,
        ctx: &RequestContext,
        p: &Param,
        decrypt: bool,
        selector: Option<String>,
    ) -> Result<Parameter, ApiError> {
        Ok(Parameter {
            name: Some(p.name.clone()),
            r#type: Some(p.r#type.clone()),
            value: Some(self.value(ctx, p, decrypt)?),
            version: Some(p.version),
            selector,
            last_modified_date: Some(Timestamp(p.modified)),
            arn: Some(arn(ctx, &p.name)),
            data_type: Some("text".into()),
            ..Default::default()
        })
    }

    async fn load(&self, ctx: &RequestContext, name: &str) -> Result<Option<Param>, ApiError> {
        Ok(load::<Param>(self.store.as_ref(), &scope(ctx), name)
            .await
            .map_err(internal(FAULT))?
            .map(|v| v.value))
    }

    async fn put(
        &self,
        ctx: &RequestContext,
        input: PutParameterRequest,
    ) -> Result<PutParameterResult, ApiError> {
        let name = input.name.clone();
        check_name(&name)?;
        if levels(&name) > MAX_LEVELS {
            return Err(ApiError::client(
                "HierarchyLevelLimitExceededException",
                format!("Parameter name {name} has more than {MAX_LEVELS} levels."),
            ));
        }
        let tier = match input.tier.clone().unwrap_or_default() {
            ParameterTier::IntelligentTiering => ParameterTier::Standard,
            t => t,
        };
        let max = if tier == ParameterTier::Advanced {
            8192
        } else {
            4096
        };
        if input.value.is_empty() || input.value.len() > max {
            return Err(validation(format!(
                "The parameter value must be 1 to {max} characters for the {tier} tier."
            )));
        }
        if input.description.as_ref().is_some_and(|d| d.len() > 1024) {
            return Err(validation(
                "The description can be at most 1024 characters.",
            ));
        }
        if input.allowed_pattern.is_some() || input.policies.is_some() {
            return Err(validation(
                "berth does not support AllowedPattern or parameter policies.",
            ));
        }
        if input.data_type.as_deref().is_some_and(|d| d != "text") {
            return Err(validation("berth supports only the 'text' data type."));
        }
        let overwrite = input.overwrite.unwrap_or(false);
        if overwrite && input.tags.is_some() {
            return Err(validation(
                "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
            ));
        }
        let value = input.value;
        mutate::<Param, _>(self.store.as_ref(), &scope(ctx), &name, FAULT, |cur| {
            let (prior, version, old) = match cur {
                Some(_) if !overwrite => {
                    return Err(ApiError::client(
                        "ParameterAlreadyExists",
                        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                    ))
                }
                Some(c) => (c.version, c.value.version, Some(c.value)),
                None => (0, 0, None),
            };
            let r#type = input
                .r#type
                .clone()
                .or_else(|| old.as_ref().map(|o| o.r#type.clone()))
                .ok_or_else(|| validation("A parameter type is required when you create a parameter."))?;
            let key_id = if is_secure(&r#type) {
                let kept = old.as_ref().and_then(|o| o.key_id.clone());
                Some(input.key_id.clone().or(kept).unwrap_or_else(|| DEFAULT_KEY.into()))
            } else if input.key_id.is_some() {
                return Err(validation("KeyId is only valid for SecureString parameters."));
            } else {
                None
            };
            let version = version + 1;
            let stored = if is_secure(&r#type) {
                let v = version.to_string();
                self.vault
                    .seal(&Self::context(ctx, &name, &v), value.as_bytes())
            } else {
                value.clone()
            };
            let p = Param {
                name: name.clone(),
                r#type,
                value: stored,
                version,
                description: input
                    .description
                    .clone()
                    .or_else(|| old.as_ref().and_then(|o| o.description.clone())),
                key_id,
                tier: tier.clone(),
                modified: now(),
                modified_by: ctx.principal_arn.clone(),
                tags: old.map(|o| o.tags).or_else(|| input.tags.clone()).unwrap_or_default(),
            };
            let out = PutParameterResult {
                version: Some(version),
                tier: Some(tier.clone()),
            };
            Ok((Change::Put(Versioned { value: p, version: prior }), out))
        })
        .await
    }

    async fn get(
        &self,
        ctx: &RequestContext,
        input: GetParameterRequest,
    ) -> Result<GetParameterResult, ApiError> {
        let (name, selector) = parse_ref(ctx, &input.name)?;
        let p = self
            .load(ctx, &name)
            .await?
            .ok_or_else(|| not_found(&input.name))?;
        if let Some(s) = &selector {
            if s.parse::<i64>().ok() != Some(p.version) {
                return Err(ApiError::client(
                    "ParameterVersionNotFound",
                    format!("Systems Manager could not find version {s} of {name}. berth keeps only the latest version."),
                ));
            }
        }
        let decrypt = input.with_decryption.unwrap_or(false);
        let selector = selector.map(|s| format!(":{s}"));
        Ok(GetParameterResult {
            parameter: Some(self.parameter(ctx, &p, decrypt, selector)?),
        })
    }

    async fn get_many(
        &self,
        ctx: &RequestContext,
        input: GetParametersRequest,
    ) -> Result<GetParametersResult, ApiError> {
        if input.names.is_empty() || input.names.len() > 10 {
            return Err(validation("Names must hold 1 to 10 names."));
        }
        let decrypt = input.with_decryption.unwrap_or(false);
        let (mut found, mut invalid) = (Vec::new(), Vec::new());
        let mut seen = std::collections::HashSet::new();
        for given in input.names {
            if !seen.insert(given.clone()) {
                continue;
            }
            let (p, selector) = match parse_ref(ctx, &given) {
                Ok((name, None)) => (self.load(ctx, &name).await?, None),
                Ok((name, Some(s))) => {
                    let p = self.load(ctx, &name).await?;
                    let p = p.filter(|p| s.parse::<i64>().ok() == Some(p.version));
                    (p, Some(format!(":{s}")))
                }
                Err(_) => (None, None),
            };
            match p {
                Some(p) => found.push(self.parameter(ctx, &p, decrypt, selector)?),
                None => invalid.push(given),
            }
        }
        Ok(GetParametersResult {
            parameters: Some(found),
            invalid_parameters: Some(invalid),
        })
    }

    async fn get_by_path(
        &self,
        ctx: &RequestContext,
        input: GetParametersByPathRequest,
    ) -> Result<GetParametersByPathResult, ApiError> {
        let path = input.path.trim_end_matches('/').to_string();
        if !input.path.starts_with('/') || (!path.is_empty() && check_name(&path).is_err()) {
            return Err(validation(format!(
                "The parameter path {} is not valid: it must begin with '/' and follow the naming rules.",
                input.path
            )));
        }
        if levels(&path) > MAX_LEVELS {
            return Err(ApiError::client(
                "HierarchyLevelLimitExceededException",
                "A path can have at most 15 levels.",
            ));
        }
        let limit = page_limit(input.max_results, 10)?;
        let filters = Filters::new(input.parameter_filters.unwrap_or_default(), false)?;
        let recursive = input.recursive.unwrap_or(false);
        let prefix = format!("{path}/");
        let filter_key = format!("{prefix}|{recursive}|{}", filters.key);
        let keep = |p: &Param| {
            let rest = &p.name[prefix.len()..];
            (recursive || !rest.contains('/')) && filters.matches(p)
        };
        let (found, token) = self
            .page(
                ctx,
                "GetParametersByPath",
                &filter_key,
                Some(prefix.clone()),
                input.next_token,
                limit,
                keep,
            )
            .await?;
        let decrypt = input.with_decryption.unwrap_or(false);
        let parameters = found
            .iter()
            .map(|p| self.parameter(ctx, p, decrypt, None))
            .collect::<Result<_, _>>()?;
        Ok(GetParametersByPathResult {
            parameters: Some(parameters),
            next_token: token,
        })
    }

    async fn describe(
        &self,
        ctx: &RequestContext,
        input: DescribeParametersRequest,
    ) -> Result<DescribeParametersResult, ApiError> {
        let limit = page_limit(input.max_results, 50)?;
        let mut given = input.parameter_filters.unwrap_or_default();
        // The legacy filters are the same checks under other names.
        for f in input.filters.unwrap_or_default() {
            let (key, option) = match f.key {
                ParametersFilterKey::Name => ("Name", "BeginsWith"),
                ParametersFilterKey::Type => ("Type", "Equals"),
                _ => ("KeyId", "Equals"),
            };
            given.push(ParameterStringFilter {
                key: key.into(),
                option: Some(option.into()),
                values: Some(f.values),
            });
        }
        let filters = Filters::new(given, true)?;
        let (found, token) = self
            .page(
                ctx,
                "DescribeParameters",
                &filters.key,
                None,
                input.next_token,
                limit,
                |p| filters.matches(p),
            )
            .await?;
        let parameters = found
            .into_iter()
            .map(|p| ParameterMetadata {
                arn: Some(arn(ctx, &p.name)),
                name: Some(p.name),
                r#type: Some(p.r#type),
                key_id: p.key_id,
                last_modified_date: Some(Timestamp(p.modified)),
                last_modified_user: Some(p.modified_by),
                description: p.description,
                version: Some(p.version),
                tier: Some(p.tier),
                policies: Some(Vec::new()),
                data_type: Some("text".into()),
                ..Default::default()
            })
            .collect();
        Ok(DescribeParametersResult {
            parameters: Some(parameters),
            next_token: token,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn page(
        &self,
        ctx: &RequestContext,
        operation: &str,
        filter: &str,
        prefix: Option<String>,
        token: Option<String>,
        limit: usize,
        keep: impl Fn(&Param) -> bool,
    ) -> Result<(Vec<Param>, Option<String>), ApiError> {
        let page = PageKey {
            operation,
            account: &ctx.account_id,
            region: &ctx.region,
            filter,
        };
        let after = match token {
            Some(t) => Some(self.tokens.decode(&page, &t).map_err(|_| {
                ApiError::client("InvalidNextToken", "The specified token is not valid.")
            })?),
            None => None,
        };
        let (found, more) = scan(
            self.store.as_ref(),
            &scope(ctx),
            prefix,
            after,
            false,
            limit,
            keep,
        )
        .await
        .map_err(internal(FAULT))?;
        let next = more
            .then(|| found.last().map(|p| self.tokens.encode(&page, &p.name)))
            .flatten();
        Ok((found, next))
    }

    async fn delete(&self, ctx: &RequestContext, name: &str) -> Result<bool, ApiError> {
        if check_name(name).is_err() {
            return Ok(false);
        }
        mutate::<Param, _>(self.store.as_ref(), &scope(ctx), name, FAULT, |cur| {
            Ok(match cur {
                Some(c) => (Change::Delete(c.version), true),
                None => (Change::Keep, false),
            })
        })
        .await
    }
}

#[async_trait::async_trait]
impl SsmApi for ParameterStore {
    async fn put_parameter(
        &self,
        ctx: &RequestContext,
        input: PutParameterRequest,
    ) -> Result<PutParameterResult, ApiError> {
        self.put(ctx, input).await
    }
    async fn get_parameter(
        &self,
        ctx: &RequestContext,
        input: GetParameterRequest,
    ) -> Result<GetParameterResult, ApiError> {
        self.get(ctx, input).await
    }
    async fn get_parameters(
        &self,
        ctx: &RequestContext,
        input: GetParametersRequest,
    ) -> Result<GetParametersResult, ApiError> {
        self.get_many(ctx, input).await
    }
    async fn get_parameters_by_path(
        &self,
        ctx: &RequestContext,
        input: GetParametersByPathRequest,
    ) -> Result<GetParametersByPathResult, ApiError> {
        self.get_by_path(ctx, input).await
    }
    async fn describe_parameters(
        &self,
        ctx: &RequestContext,
        input: DescribeParametersRequest,
    ) -> Result<DescribeParametersResult, ApiError> {
        self.describe(ctx, input).await
    }
    async fn delete_parameter(
        &self,
        ctx: &RequestContext,
        input: DeleteParameterRequest,
    ) -> Result<DeleteParameterResult, ApiError> {
        if !self.delete(ctx, &input.name).await? {
            return Err(not_found(&input.name));
        }
        Ok(DeleteParameterResult {})
    }
    async fn delete_parameters(
        &self,
        ctx: &RequestContext,
        input: DeleteParametersRequest,
    ) -> Result<DeleteParametersResult, ApiError> {
        if input.names.is_empty() || input.names.len() > 10 {
            return Err(validation("Names must hold 1 to 10 names."));
        }
        let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
        for name in input.names {
            if self.delete(ctx, &name).await? {
                deleted.push(name);
            } else if !deleted.contains(&name) {
                invalid.push(name);
            }
        }
        Ok(DeleteParametersResult {
            deleted_parameters: Some(deleted),
            invalid_parameters: Some(invalid),
        })
    }
}
