//! Container `secrets` and `repositoryCredentials`: what a `valueFrom`
//! (or `credentialsParameter`) refers to, and fetching the values the way
//! ECS's agent does, through whichever [`SecretStores`] a control plane
//! provides.
//!
//! Which service a `valueFrom` names is decided as ECS decides it:
//!
//! - `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME` (the full
//!   ARN with its random suffix, or a partial one without it), optionally
//!   followed by `:json-key:version-stage:version-id` — all three fields
//!   present, each possibly empty. Any other number of fields is refused.
//! - `arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME`: an SSM parameter,
//!   fetched in the region the ARN names.
//! - Anything else that is not an ARN is the name of an SSM parameter in
//!   the task's own region. A bare Secrets Manager secret name is never a
//!   valid `valueFrom` (ECS reads it as a parameter name); only
//!   `repositoryCredentials.credentialsParameter` takes a secret's name
//!   (same region) as well as its ARN.
//!
//! Error messages name secrets by ARN or name and never hold a value.

use async_trait::async_trait;
use berth_core::arn::Arn;
use std::collections::HashMap;

/// A Secrets Manager secret, as GetSecretValue is asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsManagerRef {
    /// The region GetSecretValue is sent to.
    pub region: String,
    /// `SecretId`: the ARN without the `:json-key:…` fields, or a name.
    pub secret_id: String,
    /// A top-level key of the JSON object the secret string holds.
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

/// What a container secret's `valueFrom` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    SecretsManager(SecretsManagerRef),
    /// An SSM parameter: `name` is passed to GetParameters as given (a name
    /// or an ARN, possibly with a `:version` selector) in `region`.
    Parameter {
        region: String,
        name: String,
    },
}

impl SecretRef {
    /// Parses a `valueFrom` of a task in `task_region`.
    pub fn parse(value_from: &str, task_region: &str) -> Result<SecretRef, String> {
        let invalid = |why: &str| format!("invalid valueFrom '{value_from}': {why}");
        if value_from.is_empty() {
            return Err(invalid("it is empty"));
        }
        if !value_from.starts_with("arn:") {
            return Ok(SecretRef::Parameter {
                region: task_region.to_string(),
                name: value_from.to_string(),
            });
        }
        let arn = Arn::parse(value_from)
            .filter(|a| !a.region.is_empty() && !a.account.is_empty())
            .ok_or_else(|| invalid("not a valid ARN"))?;
        match arn.service.as_str() {
            "secretsmanager" => {
                let rest = arn
                    .resource
                    .strip_prefix("secret:")
                    .ok_or_else(|| invalid("not a Secrets Manager secret ARN"))?;
                let fields: Vec<&str> = rest.split(':').collect();
                let (name, json_key, stage, id) = match fields[..] {
                    [name] => (name, "", "", ""),
                    [name, key, stage, id] => (name, key, stage, id),
                    _ => {
                        return Err(invalid(
                            "expected arn:aws:secretsmanager:region:account:secret:name, optionally followed by :json-key:version-stage:version-id",
                        ))
                    }
                };
                if name.is_empty() {
                    return Err(invalid("the secret name is empty"));
                }
                let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
                let secret_id = format!(
                    "arn:{}:secretsmanager:{}:{}:secret:{name}",
                    arn.partition, arn.region, arn.account
                );
                Ok(SecretRef::SecretsManager(SecretsManagerRef {
                    region: arn.region,
                    secret_id,
                    json_key: some(json_key),
                    version_stage: some(stage),
                    version_id: some(id),
                }))
            }
            "ssm" => {
                if arn
                    .resource
                    .strip_prefix("parameter/")
                    .is_none_or(str::is_empty)
                {
                    return Err(invalid("not an SSM parameter ARN"));
                }
                Ok(SecretRef::Parameter {
                    region: arn.region,
                    name: value_from.to_string(),
                })
            }
            _ => Err(invalid(
                "not the ARN of a Secrets Manager secret or an SSM parameter",
            )),
        }
    }
}

/// `repositoryCredentials.credentialsParameter` as a Secrets Manager
/// `valueFrom`: a secret ARN is used as is; a name (which ECS accepts for a
/// secret in the task's own region) becomes a partial ARN in the task's
/// account and region, which GetSecretValue resolves like the name.
pub fn credentials_value_from(parameter: &str, task_arn: &str) -> Result<String, String> {
    if parameter.starts_with("arn:") {
        return match Arn::parse(parameter) {
            Some(a) if a.service == "secretsmanager" && a.resource.starts_with("secret:") => {
                Ok(parameter.to_string())
            }
            _ => Err(format!(
                "invalid credentialsParameter '{parameter}': not a Secrets Manager secret ARN"
            )),
        };
    }
    if parameter.is_empty() || parameter.contains(':') {
        return Err(format!(
            "invalid credentialsParameter '{parameter}': not a secret name or ARN"
        ));
    }
    let task = Arn::parse(task_arn).ok_or_else(|| format!("'{task_arn}' is not a task ARN"))?;
    Ok(format!(
        "arn:{}:secretsmanager:{}:{}:secret:{parameter}",
        task.partition, task.region, task.account
    ))
}

/// The registry credentials a `credentialsParameter` secret holds: a JSON
/// object with string members `username` and `password`.
pub fn registry_auth(secret: &str, parameter: &str) -> Result<berth_runtime::RegistryAuth, String> {
    let bad = || {
        format!(
            "the secret {parameter} does not hold registry credentials: a JSON object with \"username\" and \"password\" strings"
        )
    };
    let v: serde_json::Value = serde_json::from_str(secret).map_err(|_| bad())?;
    let field = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_string);
    match (field("username"), field("password")) {
        (Some(username), Some(password)) => Ok(berth_runtime::RegistryAuth { username, password }),
        _ => Err(bad()),
    }
}

/// The member `key` of the JSON object `secret` holds, as the environment
/// gets it: a string as is, anything else as its JSON text (so a number
/// `5432` gives `5432`, a nested object its compact JSON).
pub fn select_json_key(secret: &str, key: &str, secret_id: &str) -> Result<String, String> {
    // serde's messages can quote the input: never pass them on.
    let v: serde_json::Value = serde_json::from_str(secret).map_err(|_| {
        format!("the secret {secret_id} is not a JSON object, so it has no json key {key}")
    })?;
    let obj = v.as_object().ok_or_else(|| {
        format!("the secret {secret_id} is not a JSON object, so it has no json key {key}")
    })?;
    match obj.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!(
            "retrieved secret from Secrets Manager did not contain json key {key}"
        )),
    }
}

/// One parameter a GetParameters call returned.
#[derive(Clone)]
pub struct FetchedParameter {
    pub name: String,
    pub arn: Option<String>,
    /// `:N` when the parameter was asked for with a version selector.
    pub selector: Option<String>,
    pub value: String,
}

/// A GetParameters answer.
#[derive(Clone, Default)]
pub struct FetchedParameters {
    pub parameters: Vec<FetchedParameter>,
    /// The names asked for that do not exist.
    pub invalid: Vec<String>,
}

/// The two calls ECS's agent makes for secrets, with the task's
/// credentials. Errors are `Code: message` of the service (never a value).
#[async_trait]
pub trait SecretStores: Send + Sync {
    /// GetSecretValue: the `SecretString` (`None` for a binary secret).
    async fn secret_string(&self, r: &SecretsManagerRef) -> Result<Option<String>, String>;
    /// GetParameters with `WithDecryption`, at most 10 names.
    async fn parameters(&self, region: &str, names: &[String])
        -> Result<FetchedParameters, String>;
}

/// GetParameters' limit on names per call.
const MAX_NAMES: usize = 10;

/// Fetches the values of `secrets` (`(name, valueFrom)`) of a task: one
/// GetSecretValue per distinct secret version, one GetParameters per ten
/// distinct parameters of a region. Returns `(name, value)` in order.
pub async fn resolve(
    stores: &dyn SecretStores,
    task_arn: &str,
    secrets: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let task = Arn::parse(task_arn).ok_or_else(|| format!("'{task_arn}' is not a task ARN"))?;
    let refs = secrets
        .iter()
        .map(|(_, from)| SecretRef::parse(from, &task.region))
        .collect::<Result<Vec<_>, _>>()?;

    // SSM parameters first, batched per region.
    let mut by_region: Vec<(String, Vec<String>)> = Vec::new();
    for r in &refs {
        if let SecretRef::Parameter { region, name } = r {
            match by_region.iter_mut().find(|(g, _)| g == region) {
                Some((_, names)) if names.contains(name) => {}
                Some((_, names)) => names.push(name.clone()),
                None => by_region.push((region.clone(), vec![name.clone()])),
            }
        }
    }
    let mut params: HashMap<(String, String), String> = HashMap::new();
    for (region, names) in &by_region {
        for chunk in names.chunks(MAX_NAMES) {
            let got = stores
                .parameters(region, chunk)
                .await
                .map_err(|e| format!("unable to retrieve secrets from ssm: {e}"))?;
            if !got.invalid.is_empty() {
                return Err(format!(
                    "unable to retrieve secrets from ssm: invalid parameters: {}",
                    got.invalid.join(", ")
                ));
            }
            for asked in chunk {
                let found = got.parameters.iter().find(|p| {
                    let sel = p.selector.as_deref().unwrap_or("");
                    [Some(&p.name), p.arn.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|n| *asked == *n || *asked == format!("{n}{sel}"))
                });
                let Some(p) = found else {
                    return Err(format!(
                        "unable to retrieve secrets from ssm: invalid parameters: {asked}"
                    ));
                };
                params.insert((region.clone(), asked.clone()), p.value.clone());
            }
        }
    }

    // Secrets Manager: each distinct secret version once.
    let mut strings: Vec<(SecretsManagerRef, String)> = Vec::new();
    let mut out = Vec::with_capacity(secrets.len());
    for ((env_name, _), r) in secrets.iter().zip(&refs) {
        let value = match r {
            SecretRef::Parameter { region, name } => params
                .get(&(region.clone(), name.clone()))
                .cloned()
                .unwrap_or_default(),
            SecretRef::SecretsManager(s) => {
                let whole = SecretsManagerRef {
                    json_key: None,
                    ..s.clone()
                };
                let text = match strings.iter().find(|(k, _)| *k == whole) {
                    Some((_, t)) => t.clone(),
                    None => {
                        let t = fetch_secret_string(stores, &whole).await?;
                        strings.push((whole, t.clone()));
                        t
                    }
                };
                match &s.json_key {
                    Some(key) => select_json_key(&text, key, &s.secret_id)
                        .map_err(|e| format!("unable to retrieve secret from asm: {e}"))?,
                    None => text,
                }
            }
        };
        out.push((env_name.clone(), value));
    }
    Ok(out)
}

async fn fetch_secret_string(
    stores: &dyn SecretStores,
    r: &SecretsManagerRef,
) -> Result<String, String> {
    let failed = |e: String| {
        format!(
            "unable to retrieve secret from asm: failed to fetch secret {} from secrets manager: {e}",
            r.secret_id
        )
    };
    stores
        .secret_string(r)
        .await
        .map_err(failed)?
        .ok_or_else(|| {
            failed("the secret has no SecretString (a binary secret cannot be injected)".into())
        })
}

/// Fetches the registry credentials `repositoryCredentials.credentialsParameter`
/// names, through the control plane's `resolve_secrets`.
pub async fn resolve_registry_auth(
    control: &dyn crate::ControlPlane,
    task_arn: &str,
    parameter: &str,
) -> Result<berth_runtime::RegistryAuth, String> {
    let from = credentials_value_from(parameter, task_arn)?;
    let got = control
        .resolve_secrets(task_arn, &[("credentialsParameter".into(), from)])
        .await?;
    let secret = got.into_iter().next().map(|(_, v)| v).unwrap_or_default();
    registry_auth(&secret, parameter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db-AbCdEf";
    const TASK: &str = "arn:aws:ecs:us-east-1:111122223333:task/c/0123456789abcdef";

    fn sm(r: SecretRef) -> SecretsManagerRef {
        match r {
            SecretRef::SecretsManager(s) => s,
            other => panic!("not a secret: {other:?}"),
        }
    }

    #[test]
    fn a_secret_arn_alone_is_the_whole_current_secret() {
        let s = sm(SecretRef::parse(ARN, "us-east-1").unwrap());
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.secret_id, ARN);
        assert_eq!(
            (s.json_key, s.version_stage, s.version_id),
            (None, None, None)
        );
    }

    #[test]
    fn partial_arns_and_names_with_dashes_pass_through() {
        let p = "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-password";
        assert_eq!(sm(SecretRef::parse(p, "us-east-1").unwrap()).secret_id, p);
    }

    #[test]
    fn json_key_stage_and_id_fields_each_may_be_empty() {
        let s = sm(SecretRef::parse(&format!("{ARN}:username::"), "us-east-1").unwrap());
        assert_eq!(s.secret_id, ARN);
        assert_eq!(s.json_key.as_deref(), Some("username"));
        assert_eq!((s.version_stage, s.version_id), (None, None));

        let s = sm(SecretRef::parse(&format!("{ARN}::AWSPREVIOUS:"), "us-east-1").unwrap());
        assert_eq!(s.json_key, None);
        assert_eq!(s.version_stage.as_deref(), Some("AWSPREVIOUS"));

        let s = sm(SecretRef::parse(&format!("{ARN}:k::v-1"), "us-east-1").unwrap());
        assert_eq!(s.json_key.as_deref(), Some("k"));
        assert_eq!(s.version_id.as_deref(), Some("v-1"));

        let s = sm(SecretRef::parse(&format!("{ARN}:::"), "us-east-1").unwrap());
        assert_eq!(s, sm(SecretRef::parse(ARN, "us-east-1").unwrap()));
    }

    #[test]
    fn other_field_counts_and_foreign_arns_are_refused() {
        for bad in [
            format!("{ARN}:username"),
            format!("{ARN}:username:AWSCURRENT"),
            format!("{ARN}:a:b:c:d"),
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:".to_string(),
            "arn:aws:secretsmanager:us-east-1:111122223333:db".to_string(),
            "arn:aws:secretsmanager::111122223333:secret:db".to_string(),
            "arn:aws:ssm:us-east-1:111122223333:parameter/".to_string(),
            "arn:aws:ssm:us-east-1:111122223333:document/x".to_string(),
            "arn:aws:s3:::bucket/key".to_string(),
            "arn:nope".to_string(),
            String::new(),
        ] {
            let e = SecretRef::parse(&bad, "us-east-1").unwrap_err();
            assert!(e.contains(&bad), "{e}");
        }
    }

    #[test]
    fn ssm_arns_use_their_region_and_names_the_tasks() {
        let a = "arn:aws:ssm:eu-west-1:111122223333:parameter/app/db/password";
        assert_eq!(
            SecretRef::parse(a, "us-east-1").unwrap(),
            SecretRef::Parameter {
                region: "eu-west-1".into(),
                name: a.into()
            }
        );
        for name in ["/app/db/password", "plain", "db-AbCdEf", "name:3"] {
            assert_eq!(
                SecretRef::parse(name, "us-east-1").unwrap(),
                SecretRef::Parameter {
                    region: "us-east-1".into(),
                    name: name.into()
                }
            );
        }
    }

    #[test]
    fn json_keys_select_top_level_members() {
        let s = r#"{"user":"app","port":5432,"tls":true,"nested":{"a":1},"none":null}"#;
        assert_eq!(select_json_key(s, "user", "x").unwrap(), "app");
        assert_eq!(select_json_key(s, "port", "x").unwrap(), "5432");
        assert_eq!(select_json_key(s, "tls", "x").unwrap(), "true");
        assert_eq!(select_json_key(s, "nested", "x").unwrap(), r#"{"a":1}"#);
        assert_eq!(select_json_key(s, "none", "x").unwrap(), "null");
        let e = select_json_key(s, "a", "x").unwrap_err();
        assert_eq!(
            e,
            "retrieved secret from Secrets Manager did not contain json key a"
        );
    }

    #[test]
    fn json_key_errors_never_quote_the_secret() {
        for secret in [
            "hunter2-not-json",
            r#"["hunter2"]"#,
            r#""hunter2""#,
            "{\"hunter2",
        ] {
            let e = select_json_key(secret, "k", "arn:x").unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("arn:x") && e.contains('k'), "{e}");
        }
    }

    #[test]
    fn credentials_parameters_take_secret_arns_and_names() {
        assert_eq!(credentials_value_from(ARN, TASK).unwrap(), ARN);
        assert_eq!(
            credentials_value_from("registry/creds", TASK).unwrap(),
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:registry/creds"
        );
        assert!(credentials_value_from("arn:aws:ssm:us-east-1:1:parameter/x", TASK).is_err());
        assert!(credentials_value_from("", TASK).is_err());
        assert!(credentials_value_from("a:b", TASK).is_err());
    }

    #[test]
    fn registry_auth_needs_username_and_password() {
        let a = registry_auth(r#"{"username":"u","password":"hunter2"}"#, "p").unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "hunter2"));
        for bad in [
            r#"{"username":"u"}"#,
            r#"{"username":"u","password":1}"#,
            "hunter2",
        ] {
            let e = registry_auth(bad, "p").unwrap_err();
            assert!(!e.contains("hunter2") && e.contains('p'), "{e}");
        }
    }

    /// Stores answering from maps, recording the calls.
    #[derive(Default)]
    struct Fake {
        secrets: HashMap<String, String>,
        params: HashMap<String, String>,
        calls: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl SecretStores for Fake {
        async fn secret_string(&self, r: &SecretsManagerRef) -> Result<Option<String>, String> {
            self.calls
                .lock()
                .push(format!("sm {} {}", r.region, r.secret_id));
            let key = format!(
                "{}|{}",
                r.secret_id,
                r.version_stage.as_deref().unwrap_or("")
            );
            self.secrets.get(&key).cloned().map(Some).ok_or_else(|| {
                "ResourceNotFoundException: Secrets Manager can't find the specified secret."
                    .to_string()
            })
        }
        async fn parameters(
            &self,
            region: &str,
            names: &[String],
        ) -> Result<FetchedParameters, String> {
            assert!(names.len() <= MAX_NAMES);
            self.calls
                .lock()
                .push(format!("ssm {region} {}", names.len()));
            let mut out = FetchedParameters::default();
            for n in names {
                let bare = n
                    .strip_prefix("arn:aws:ssm:us-east-1:111122223333:parameter")
                    .unwrap_or(n);
                match self.params.get(bare) {
                    Some(v) => out.parameters.push(FetchedParameter {
                        name: bare.into(),
                        arn: Some(format!(
                            "arn:aws:ssm:us-east-1:111122223333:parameter{bare}"
                        )),
                        selector: None,
                        value: v.clone(),
                    }),
                    None => out.invalid.push(n.clone()),
                }
            }
            Ok(out)
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn resolves_in_order_fetching_each_thing_once() {
        let mut f = Fake::default();
        f.secrets
            .insert(format!("{ARN}|"), r#"{"u":"app","p":"pw"}"#.into());
        f.secrets.insert(format!("{ARN}|AWSPREVIOUS"), "old".into());
        for i in 0..12 {
            f.params.insert(format!("/p/{i}"), format!("v{i}"));
        }
        let mut secrets = vec![
            ("U", format!("{ARN}:u::")),
            ("P", format!("{ARN}:p::")),
            ("ALL", ARN.to_string()),
            ("OLD", format!("{ARN}::AWSPREVIOUS:")),
            (
                "BYARN",
                "arn:aws:ssm:us-east-1:111122223333:parameter/p/0".to_string(),
            ),
        ];
        let names: Vec<String> = (0..12).map(|i| format!("/p/{i}")).collect();
        for n in &names {
            secrets.push(("N", n.clone()));
        }
        let secrets: Vec<(String, String)> = secrets
            .into_iter()
            .map(|(a, b)| (a.to_string(), b))
            .collect();
        let got = resolve(&f, TASK, &secrets).await.unwrap();
        assert_eq!(got[0], ("U".into(), "app".into()));
        assert_eq!(got[1], ("P".into(), "pw".into()));
        assert_eq!(got[2].1, r#"{"u":"app","p":"pw"}"#);
        assert_eq!(got[3].1, "old");
        assert_eq!(got[4].1, "v0");
        for i in 0..12 {
            assert_eq!(got[5 + i].1, format!("v{i}"));
        }
        let calls = f.calls.lock().clone();
        // 13 distinct parameters in one region: two GetParameters calls;
        // the secret once per version.
        assert_eq!(
            calls,
            vec![
                "ssm us-east-1 10".to_string(),
                "ssm us-east-1 3".to_string(),
                format!("sm eu-west-1 {ARN}"),
                format!("sm eu-west-1 {ARN}"),
            ]
        );
    }

    #[tokio::test]
    async fn failures_name_the_reference_never_a_value() {
        let mut f = Fake::default();
        f.secrets
            .insert(format!("{ARN}|"), r#"{"u":"hunter2"}"#.into());
        f.params.insert("/there".into(), "hunter2".into());

        let e = resolve(&f, TASK, &pairs(&[("A", "/there"), ("B", "/missing")]))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "unable to retrieve secrets from ssm: invalid parameters: /missing"
        );

        let missing = "arn:aws:secretsmanager:us-east-1:111122223333:secret:gone";
        let e = resolve(&f, TASK, &pairs(&[("A", missing)]))
            .await
            .unwrap_err();
        assert!(
            e.contains(missing) && e.contains("ResourceNotFoundException"),
            "{e}"
        );

        let e = resolve(&f, TASK, &pairs(&[("A", &format!("{ARN}:nope::"))]))
            .await
            .unwrap_err();
        assert!(e.ends_with("did not contain json key nope"), "{e}");
        assert!(!e.contains("hunter2"));

        let e = resolve(&f, TASK, &pairs(&[("A", "arn:aws:s3:::b")]))
            .await
            .unwrap_err();
        assert!(e.contains("arn:aws:s3:::b"), "{e}");
    }
}
