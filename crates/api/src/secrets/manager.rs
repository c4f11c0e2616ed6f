//! Secrets Manager: CreateSecret, PutSecretValue, GetSecretValue,
//! DescribeSecret, ListSecrets, DeleteSecret.
//!
//! A scheduled deletion needs no sweeper: once the recovery window
//! has passed the secret reads as absent and its name is free again.

use super::secret::*;
use super::{internal, mutate, now, scan, Change, Vault};
use crate::records::{scope, Versioned};
use berth_core::arn::Arn;
use berth_core::pagination::{PageKey, TokenCodec};
use berth_store::Store;
use berth_wire::secretsmanager::*;
use berth_wire::{ApiError, Blob, RequestContext, Timestamp};
use std::sync::Arc;

const FAULT: &str = "InternalServiceError";

/// Secrets Manager over one store.
#[derive(Clone)]
pub struct SecretsManager {
    store: Arc<dyn Store>,
    tokens: TokenCodec,
    vault: Vault,
}

impl SecretsManager {
    /// `token_key` signs pagination tokens; `vault` seals the values.
    pub fn new(store: Arc<dyn Store>, token_key: Vec<u8>, vault: Vault) -> Self {
        SecretsManager {
            store,
            tokens: TokenCodec::new(token_key),
            vault,
        }
    }

    fn context<'a>(ctx: &'a RequestContext, name: &'a str, version: &'a str) -> [&'a str; 5] {
        [
            "secretsmanager",
            &ctx.account_id,
            &ctx.region,
            name,
            version,
        ]
    }

    fn seal(&self, ctx: &RequestContext, name: &str, id: &str, v: &Value) -> SecretVersion {
        let (binary, bytes) = match v {
            Value::Text(s) => (false, s.as_bytes()),
            Value::Binary(b) => (true, b.as_slice()),
        };
        SecretVersion {
            id: id.to_string(),
            stages: Vec::new(),
            created: now(),
            binary,
            sealed: self.vault.seal(&Self::context(ctx, name, id), bytes),
        }
    }

    fn open(&self, ctx: &RequestContext, name: &str, v: &SecretVersion) -> Result<Value, ApiError> {
        let plain = self
            .vault
            .open(&Self::context(ctx, name, &v.id), &v.sealed)
            .ok_or_else(|| {
                tracing::error!(secret = name, version = %v.id, "a secret value does not decrypt");
                ApiError::client(
                    "DecryptionFailure",
                    "Secrets Manager can't decrypt the protected secret text using the provided key.",
                )
            })?;
        if !v.binary {
            if let Ok(s) = String::from_utf8(plain.clone()) {
                return Ok(Value::Text(s));
            }
        }
        Ok(Value::Binary(plain))
    }

    /// The name a SecretId (a name, a full ARN or a partial ARN without the
    /// random suffix) refers to, and the exact ARN the secret must have when
    /// a full ARN was given.
    async fn locate(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<(String, Option<String>), ApiError> {
        if !id.starts_with("arn:") {
            return Ok((id.to_string(), None));
        }
        let a = Arn::parse(id)
            .filter(|a| a.service == "secretsmanager")
            .ok_or_else(|| invalid(format!("'{id}' is not a secret ARN.")))?;
        let rest = a
            .resource
            .strip_prefix("secret:")
            .ok_or_else(|| invalid(format!("'{id}' is not a secret ARN.")))?;
        if a.account != ctx.account_id || a.region != ctx.region {
            return Err(not_found());
        }
        // "name-AbCdEf" is either the full ARN of "name" or a partial one of
        // a secret really called "name-AbCdEf": the stored ARN decides.
        if let Some(name) = rest
            .len()
            .checked_sub(7)
            .filter(|&i| rest.as_bytes()[i] == b'-')
            .map(|i| &rest[..i])
        {
            let found = crate::records::load::<Secret>(self.store.as_ref(), &scope(ctx), name)
                .await
                .map_err(internal(FAULT))?;
            if found.is_some_and(|s| s.value.arn == id) {
                return Ok((name.to_string(), Some(id.to_string())));
            }
        }
        Ok((rest.to_string(), None))
    }

    /// The live secret `id` names (scheduled for deletion or not).
    async fn find(&self, ctx: &RequestContext, id: &str) -> Result<Secret, ApiError> {
        let (name, arn) = self.locate(ctx, id).await?;
        let found = crate::records::load::<Secret>(self.store.as_ref(), &scope(ctx), &name)
            .await
            .map_err(internal(FAULT))?;
        live(found, arn.as_deref()).map(|v| v.value)
    }

    async fn create(
        &self,
        ctx: &RequestContext,
        input: CreateSecretRequest,
    ) -> Result<CreateSecretResponse, ApiError> {
        check_name(&input.name)?;
        if input.description.as_ref().is_some_and(|d| d.len() > 2048) {
            return Err(invalid("The description can be at most 2048 characters."));
        }
        if input
            .add_replica_regions
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            return Err(invalid(
                "berth does not replicate secrets to other regions.",
            ));
        }
        let tags = input.tags.unwrap_or_default();
        if tags.len() > 50
            || tags
                .iter()
                .any(|t| t.key.as_deref().unwrap_or("").is_empty())
        {
            return Err(invalid(
                "A secret has at most 50 tags, each with a non-empty key.",
            ));
        }
        let value = value(input.secret_string, input.secret_binary)?;
        let version = version_id(input.client_request_token)?;
        let name = input.name;
        let sealed = value.as_ref().map(|v| self.seal(ctx, &name, &version, v));
        let out = |s: &Secret| CreateSecretResponse {
            arn: Some(s.arn.clone()),
            name: Some(s.name.clone()),
            version_id: value.is_some().then(|| version.clone()),
            ..Default::default()
        };
        mutate::<Secret, _>(self.store.as_ref(), &scope(ctx), &name, FAULT, |cur| {
            let prior = match cur {
                Some(c) if c.value.purged(now()) => c.version,
                Some(c) => {
                    if c.value.deleted.is_some() {
                        return Err(ApiError::client(
                            "InvalidRequestException",
                            "You can't create this secret because a secret with this name is already scheduled for deletion.",
                        ));
                    }
                    // A retry of the same request (same token, same value) succeeds.
                    let same = match (c.value.versions.iter().find(|v| v.id == version), &value) {
                        (Some(v), Some(want)) => self.open(ctx, &name, v).ok().as_ref() == Some(want),
                        _ => false,
                    };
                    if same {
                        return Ok((Change::Keep, out(&c.value)));
                    }
                    return Err(ApiError::client(
                        "ResourceExistsException",
                        format!("The operation failed because the secret {name} already exists."),
                    ));
                }
                None => 0,
            };
            let t = now();
            let mut s = Secret {
                arn: format!(
                    "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
                    ctx.region,
                    ctx.account_id,
                    random_suffix()
                ),
                name: name.clone(),
                description: input.description.clone(),
                kms_key_id: input.kms_key_id.clone(),
                tags: tags.clone(),
                created: t,
                changed: t,
                deleted: None,
                purge_after: None,
                versions: Vec::new(),
            };
            if let Some(v) = &sealed {
                s.add_version(SecretVersion {
                    stages: vec![CURRENT.to_string()],
                    ..v.clone()
                });
            }
            let r = out(&s);
            Ok((Change::Put(Versioned { value: s, version: prior }), r))
        })
        .await
    }

    async fn put_value(
        &self,
        ctx: &RequestContext,
        input: PutSecretValueRequest,
    ) -> Result<PutSecretValueResponse, ApiError> {
        let value = value(input.secret_string, input.secret_binary)?
            .ok_or_else(|| invalid("You must provide either SecretString or SecretBinary."))?;
        let version = version_id(input.client_request_token)?;
        let stages = input
            .version_stages
            .unwrap_or_else(|| vec![CURRENT.to_string()]);
        if stages.len() > 20 || stages.iter().any(|s| s.is_empty() || s.len() > 256) {
            return Err(invalid(
                "VersionStages takes 1 to 20 labels of 1 to 256 characters.",
            ));
        }
        let (name, arn) = self.locate(ctx, &input.secret_id).await?;
        let sealed = self.seal(ctx, &name, &version, &value);
        mutate::<Secret, _>(self.store.as_ref(), &scope(ctx), &name, FAULT, |cur| {
            let mut cur = live(cur, arn.as_deref())?;
            if cur.value.deleted.is_some() {
                return Err(marked_for_deletion());
            }
            let s = &mut cur.value;
            let out = |s: &Secret, stages: Vec<String>| PutSecretValueResponse {
                arn: Some(s.arn.clone()),
                name: Some(s.name.clone()),
                version_id: Some(version.clone()),
                version_stages: Some(stages),
            };
            if let Some(v) = s.versions.iter().find(|v| v.id == version) {
                if self.open(ctx, &name, v)? == value {
                    return Ok((Change::Keep, out(s, v.stages.clone())));
                }
                return Err(ApiError::client(
                    "ResourceExistsException",
                    format!(
                        "A version with VersionId {version} already exists with a different value."
                    ),
                ));
            }
            s.add_version(SecretVersion {
                stages: stages.clone(),
                ..sealed.clone()
            });
            s.changed = now();
            let r = out(s, stages.clone());
            Ok((Change::Put(cur), r))
        })
        .await
    }

    async fn get_value(
        &self,
        ctx: &RequestContext,
        input: GetSecretValueRequest,
    ) -> Result<GetSecretValueResponse, ApiError> {
        let s = self.find(ctx, &input.secret_id).await?;
        if s.deleted.is_some() {
            return Err(marked_for_deletion());
        }
        let missing = |what: String| {
            ApiError::client(
                "ResourceNotFoundException",
                format!("Secrets Manager can't find the specified secret value for {what}"),
            )
        };
        let v = match (&input.version_id, &input.version_stage) {
            (Some(id), stage) => s
                .versions
                .iter()
                .find(|v| &v.id == id && stage.as_ref().is_none_or(|st| v.stages.contains(st)))
                .ok_or_else(|| missing(format!("VersionId: {id}")))?,
            (None, stage) => {
                let stage = stage.as_deref().unwrap_or(CURRENT);
                s.versions
                    .iter()
                    .find(|v| v.stages.iter().any(|st| st == stage))
                    .ok_or_else(|| missing(format!("staging label: {stage}")))?
            }
        };
        let (secret_string, secret_binary) = match self.open(ctx, &s.name, v)? {
            Value::Text(t) if !v.binary => (Some(t), None),
            Value::Text(t) => (None, Some(Blob(t.into_bytes()))),
            Value::Binary(b) => (None, Some(Blob(b))),
        };
        Ok(GetSecretValueResponse {
            arn: Some(s.arn.clone()),
            name: Some(s.name.clone()),
            version_id: Some(v.id.clone()),
            secret_string,
            secret_binary,
            version_stages: Some(v.stages.clone()),
            created_date: Some(Timestamp(v.created)),
        })
    }

    async fn describe(
        &self,
        ctx: &RequestContext,
        input: DescribeSecretRequest,
    ) -> Result<DescribeSecretResponse, ApiError> {
        let s = self.find(ctx, &input.secret_id).await?;
        Ok(DescribeSecretResponse {
            arn: Some(s.arn.clone()),
            name: Some(s.name.clone()),
            description: s.description.clone(),
            kms_key_id: s.kms_key_id.clone(),
            last_changed_date: Some(Timestamp(s.changed)),
            deleted_date: s.deleted.map(Timestamp),
            tags: s.tags(),
            version_ids_to_stages: Some(s.labeled()),
            created_date: Some(Timestamp(s.created)),
            ..Default::default()
        })
    }

    async fn list(
        &self,
        ctx: &RequestContext,
        input: ListSecretsRequest,
    ) -> Result<ListSecretsResponse, ApiError> {
        let limit = match input.max_results {
            None => 100,
            Some(n @ 1..=100) => n as usize,
            Some(n) => return Err(invalid(format!("MaxResults {n} is not between 1 and 100."))),
        };
        let filters = input.filters.unwrap_or_default();
        for f in &filters {
            let k = f.key.as_ref().map(|k| k.as_str()).unwrap_or("");
            if !FilterNameStringType::VALUES.contains(&k)
                || f.values.as_ref().is_none_or(|v| v.is_empty())
            {
                return Err(invalid(format!(
                    "Invalid filter '{k}': give a known key and at least one value."
                )));
            }
        }
        let descending = input.sort_order == Some(SortOrderType::Desc);
        let planned = input.include_planned_deletion.unwrap_or(false);
        let filter_key = format!(
            "{:?}|{descending}|{planned}",
            filters
                .iter()
                .map(|f| (
                    f.key.as_ref().map(|k| k.as_str().to_string()),
                    f.values.clone()
                ))
                .collect::<Vec<_>>()
        );
        let page = PageKey {
            operation: "ListSecrets",
            account: &ctx.account_id,
            region: &ctx.region,
            filter: &filter_key,
        };
        let after = match &input.next_token {
            Some(t) => Some(self.tokens.decode(&page, t).map_err(|_| {
                ApiError::client(
                    "InvalidNextTokenException",
                    "The NextToken value is not valid.",
                )
            })?),
            None => None,
        };
        let t = now();
        let keep = |s: &Secret| {
            !s.purged(t)
                && (planned || s.deleted.is_none())
                && filters.iter().all(|f| matches(s, f))
        };
        let (found, more) = scan(
            self.store.as_ref(),
            &scope(ctx),
            None,
            after,
            descending,
            limit,
            keep,
        )
        .await
        .map_err(internal(FAULT))?;
        let next_token = more
            .then(|| found.last().map(|s| self.tokens.encode(&page, &s.name)))
            .flatten();
        let secret_list = found
            .into_iter()
            .map(|s| SecretListEntry {
                arn: Some(s.arn.clone()),
                name: Some(s.name.clone()),
                description: s.description.clone(),
                kms_key_id: s.kms_key_id.clone(),
                last_changed_date: Some(Timestamp(s.changed)),
                deleted_date: s.deleted.map(Timestamp),
                tags: s.tags(),
                secret_versions_to_stages: Some(s.labeled()),
                created_date: Some(Timestamp(s.created)),
                ..Default::default()
            })
            .collect();
        Ok(ListSecretsResponse {
            secret_list: Some(secret_list),
            next_token,
        })
    }

    async fn delete(
        &self,
        ctx: &RequestContext,
        input: DeleteSecretRequest,
    ) -> Result<DeleteSecretResponse, ApiError> {
        let force = input.force_delete_without_recovery.unwrap_or(false);
        if force && input.recovery_window_in_days.is_some() {
            return Err(invalid(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
            ));
        }
        let days = input.recovery_window_in_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(invalid(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            ));
        }
        let (name, arn) = self.locate(ctx, &input.secret_id).await?;
        mutate::<Secret, _>(self.store.as_ref(), &scope(ctx), &name, FAULT, |cur| {
            let mut cur = live(cur, arn.as_deref())?;
            let t = now();
            let out = |s: &Secret, at: f64| DeleteSecretResponse {
                arn: Some(s.arn.clone()),
                name: Some(s.name.clone()),
                deletion_date: Some(Timestamp(at)),
            };
            if force {
                let r = out(&cur.value, t);
                return Ok((Change::Delete(cur.version), r));
            }
            if cur.value.deleted.is_some() {
                return Err(marked_for_deletion());
            }
            let purge = t + days as f64 * 86_400.0;
            cur.value.deleted = Some(t);
            cur.value.purge_after = Some(purge);
            let r = out(&cur.value, purge);
            Ok((Change::Put(cur), r))
        })
        .await
    }
}

#[async_trait::async_trait]
impl SecretsManagerApi for SecretsManager {
    async fn create_secret(
        &self,
        ctx: &RequestContext,
        input: CreateSecretRequest,
    ) -> Result<CreateSecretResponse, ApiError> {
        self.create(ctx, input).await
    }
    async fn put_secret_value(
        &self,
        ctx: &RequestContext,
        input: PutSecretValueRequest,
    ) -> Result<PutSecretValueResponse, ApiError> {
        self.put_value(ctx, input).await
    }
    async fn get_secret_value(
        &self,
        ctx: &RequestContext,
        input: GetSecretValueRequest,
    ) -> Result<GetSecretValueResponse, ApiError> {
        self.get_value(ctx, input).await
    }
    async fn describe_secret(
        &self,
        ctx: &RequestContext,
        input: DescribeSecretRequest,
    ) -> Result<DescribeSecretResponse, ApiError> {
        self.describe(ctx, input).await
    }
    async fn list_secrets(
        &self,
        ctx: &RequestContext,
        input: ListSecretsRequest,
    ) -> Result<ListSecretsResponse, ApiError> {
        self.list(ctx, input).await
    }
    async fn delete_secret(
        &self,
        ctx: &RequestContext,
        input: DeleteSecretRequest,
    ) -> Result<DeleteSecretResponse, ApiError> {
        self.delete(ctx, input).await
    }
}
