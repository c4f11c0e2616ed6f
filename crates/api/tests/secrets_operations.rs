//! Secrets Manager and SSM Parameter Store called directly (no HTTP),
//! against a real SQLite store.

use berth_api::{ParameterStore, SecretsManager, Vault};
use berth_store::SqliteStore;
use berth_wire::secretsmanager::*;
use berth_wire::ssm::*;
use berth_wire::{ApiError, Blob, RequestContext};
use std::sync::Arc;

const TOKEN_A: &str = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
const TOKEN_B: &str = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";

struct Harness {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    sm: SecretsManager,
    ssm: ParameterStore,
    ctx: RequestContext,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("berth.db")).unwrap());
    let vault = Vault::new(&[42u8; 32]).unwrap();
    Harness {
        sm: SecretsManager::new(store.clone(), b"k".to_vec(), vault.clone()),
        ssm: ParameterStore::new(store.clone(), b"k".to_vec(), vault),
        store,
        dir,
        ctx: RequestContext::for_account("123456789012", "us-east-1"),
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> String {
    r.unwrap_err().code.to_string()
}

impl Harness {
    async fn create(&self, name: &str, value: &str) -> CreateSecretResponse {
        self.sm
            .create_secret(
                &self.ctx,
                CreateSecretRequest {
                    name: name.into(),
                    secret_string: Some(value.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }

    async fn get(&self, id: &str) -> Result<GetSecretValueResponse, ApiError> {
        self.sm
            .get_secret_value(
                &self.ctx,
                GetSecretValueRequest {
                    secret_id: id.into(),
                    ..Default::default()
                },
            )
            .await
    }

    async fn put_param(
        &self,
        name: &str,
        value: &str,
        t: ParameterType,
        overwrite: bool,
    ) -> Result<i64, ApiError> {
        let r = self
            .ssm
            .put_parameter(
                &self.ctx,
                PutParameterRequest {
                    name: name.into(),
                    value: value.into(),
                    r#type: Some(t),
                    overwrite: Some(overwrite),
                    ..Default::default()
                },
            )
            .await?;
        Ok(r.version.unwrap())
    }

    async fn get_param(&self, name: &str, decrypt: bool) -> Result<Parameter, ApiError> {
        let r = self
            .ssm
            .get_parameter(
                &self.ctx,
                GetParameterRequest {
                    name: name.into(),
                    with_decryption: Some(decrypt),
                },
            )
            .await?;
        Ok(r.parameter.unwrap())
    }
}

#[tokio::test]
async fn versions_rotate_current_and_previous() {
    let h = harness();
    let c = h.create("db/password", "one").await;
    let arn = c.arn.unwrap();
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:db/password-"));
    assert_eq!(
        arn.len(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db/password-".len() + 6
    );
    let v1 = c.version_id.unwrap();
    let put =
        h.sm.put_secret_value(
            &h.ctx,
            PutSecretValueRequest {
                secret_id: "db/password".into(),
                secret_string: Some("two".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let v2 = put.version_id.unwrap();
    assert_eq!(put.version_stages.unwrap(), ["AWSCURRENT"]);

    let cur = h.get("db/password").await.unwrap();
    assert_eq!(
        (cur.secret_string.as_deref(), cur.version_id.as_deref()),
        (Some("two"), Some(v2.as_str()))
    );
    let prev =
        h.sm.get_secret_value(
            &h.ctx,
            GetSecretValueRequest {
                secret_id: arn.clone(),
                version_stage: Some("AWSPREVIOUS".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(prev.secret_string.as_deref(), Some("one"));
    assert_eq!(prev.version_id.as_deref(), Some(v1.as_str()));

    let d =
        h.sm.describe_secret(
            &h.ctx,
            DescribeSecretRequest {
                secret_id: arn.clone(),
            },
        )
        .await
        .unwrap();
    let stages = d.version_ids_to_stages.unwrap();
    assert_eq!(stages[&v1], ["AWSPREVIOUS"]);
    assert_eq!(stages[&v2], ["AWSCURRENT"]);

    // A third version pushes the first out of every stage.
    h.sm.put_secret_value(
        &h.ctx,
        PutSecretValueRequest {
            secret_id: "db/password".into(),
            secret_string: Some("three".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let d =
        h.sm.describe_secret(&h.ctx, DescribeSecretRequest { secret_id: arn })
            .await
            .unwrap();
    let stages = d.version_ids_to_stages.unwrap();
    assert!(!stages.contains_key(&v1));
    assert_eq!(stages[&v2], ["AWSPREVIOUS"]);
}

#[tokio::test]
async fn secret_ids_by_name_full_and_partial_arn() {
    let h = harness();
    let arn = h.create("app-key", "v").await.arn.unwrap();
    let partial = arn[..arn.len() - 7].to_string();
    for id in [&arn, &partial, &"app-key".to_string()] {
        assert_eq!(
            h.get(id).await.unwrap().name.as_deref(),
            Some("app-key"),
            "{id}"
        );
    }
    // A secret whose own name looks like "<name>-<suffix>" is found by name.
    h.create("app-key-AbCdEf", "w").await;
    assert_eq!(
        h.get(&format!("{partial}-AbCdEf"))
            .await
            .unwrap()
            .secret_string
            .as_deref(),
        Some("w")
    );
    assert_eq!(
        code(h.get(&arn.replace("us-east-1", "eu-west-1")).await),
        "ResourceNotFoundException"
    );
    assert_eq!(code(h.get("nope").await), "ResourceNotFoundException");
}

#[tokio::test]
async fn create_is_idempotent_per_token_and_validates() {
    let h = harness();
    let req = |token: &str, value: &str| CreateSecretRequest {
        name: "s".into(),
        client_request_token: Some(token.into()),
        secret_string: Some(value.into()),
        ..Default::default()
    };
    let a = h.sm.create_secret(&h.ctx, req(TOKEN_A, "x")).await.unwrap();
    let again = h.sm.create_secret(&h.ctx, req(TOKEN_A, "x")).await.unwrap();
    assert_eq!((a.arn, a.version_id.as_deref()), (again.arn, Some(TOKEN_A)));
    assert_eq!(
        code(h.sm.create_secret(&h.ctx, req(TOKEN_A, "y")).await),
        "ResourceExistsException"
    );
    assert_eq!(
        code(h.sm.create_secret(&h.ctx, req(TOKEN_B, "x")).await),
        "ResourceExistsException"
    );
    assert_eq!(
        code(h.sm.create_secret(&h.ctx, req("short", "x")).await),
        "InvalidParameterException"
    );

    let bad = |name: &str| CreateSecretRequest {
        name: name.into(),
        secret_string: Some("v".into()),
        ..Default::default()
    };
    for name in ["", "has space", "semi;colon", &"a".repeat(513)] {
        assert_eq!(
            code(h.sm.create_secret(&h.ctx, bad(name)).await),
            "InvalidParameterException"
        );
    }
    let both = CreateSecretRequest {
        name: "both".into(),
        secret_string: Some("v".into()),
        secret_binary: Some(Blob(vec![1])),
        ..Default::default()
    };
    assert_eq!(
        code(h.sm.create_secret(&h.ctx, both).await),
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn binary_secrets_round_trip() {
    let h = harness();
    let req = CreateSecretRequest {
        name: "bin".into(),
        secret_binary: Some(Blob(vec![0, 159, 146, 150, 255])),
        ..Default::default()
    };
    h.sm.create_secret(&h.ctx, req).await.unwrap();
    let v = h.get("bin").await.unwrap();
    assert_eq!(v.secret_binary.unwrap().0, [0, 159, 146, 150, 255]);
    assert!(v.secret_string.is_none());
}

#[tokio::test]
async fn deletion_window_and_force() {
    let h = harness();
    let arn = h.create("gone", "v").await.arn.unwrap();
    let del = |id: &str, days: Option<i64>, force: Option<bool>| DeleteSecretRequest {
        secret_id: id.into(),
        recovery_window_in_days: days,
        force_delete_without_recovery: force,
    };
    for (days, force) in [(Some(6), None), (Some(31), None), (Some(7), Some(true))] {
        assert_eq!(
            code(h.sm.delete_secret(&h.ctx, del("gone", days, force)).await),
            "InvalidParameterException"
        );
    }
    let r =
        h.sm.delete_secret(&h.ctx, del("gone", None, None))
            .await
            .unwrap();
    let in_30 = berth_wire::Timestamp::now().0 + 30.0 * 86_400.0;
    assert!((r.deletion_date.unwrap().0 - in_30).abs() < 60.0);

    let err = h.get("gone").await.unwrap_err();
    assert_eq!(err.code, "InvalidRequestException");
    assert!(err.message.contains("marked for deletion"));
    let d =
        h.sm.describe_secret(
            &h.ctx,
            DescribeSecretRequest {
                secret_id: "gone".into(),
            },
        )
        .await
        .unwrap();
    assert!(d.deleted_date.is_some());
    let hr = &h;
    let listed = |planned| async move {
        let h = hr;
        let r =
            h.sm.list_secrets(
                &h.ctx,
                ListSecretsRequest {
                    include_planned_deletion: Some(planned),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        r.secret_list.unwrap().len()
    };
    assert_eq!((listed(false).await, listed(true).await), (0, 1));
    let again = CreateSecretRequest {
        name: "gone".into(),
        ..Default::default()
    };
    assert_eq!(
        code(h.sm.create_secret(&h.ctx, again.clone()).await),
        "InvalidRequestException"
    );

    h.sm.delete_secret(&h.ctx, del(&arn, None, Some(true)))
        .await
        .unwrap();
    assert_eq!(code(h.get("gone").await), "ResourceNotFoundException");
    let new_arn =
        h.sm.create_secret(&h.ctx, again)
            .await
            .unwrap()
            .arn
            .unwrap();
    assert_ne!(new_arn, arn);
    // The old ARN does not reach the new secret of the same name.
    assert_eq!(
        code(
            h.sm.describe_secret(&h.ctx, DescribeSecretRequest { secret_id: arn })
                .await
        ),
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn list_secrets_pages_and_filters() {
    let h = harness();
    for i in 0..7 {
        h.create(&format!("team/{i}"), "v").await;
    }
    h.create("other", "v").await;
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let r =
            h.sm.list_secrets(
                &h.ctx,
                ListSecretsRequest {
                    max_results: Some(3),
                    next_token: token,
                    filters: Some(vec![Filter {
                        key: Some(FilterNameStringType::Name),
                        values: Some(vec!["team/".into()]),
                    }]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        names.extend(r.secret_list.unwrap().into_iter().map(|s| s.name.unwrap()));
        token = r.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        names,
        (0..7).map(|i| format!("team/{i}")).collect::<Vec<_>>()
    );
    let bad = ListSecretsRequest {
        next_token: Some("garbage".into()),
        ..Default::default()
    };
    assert_eq!(
        code(h.sm.list_secrets(&h.ctx, bad).await),
        "InvalidNextTokenException"
    );
}

#[tokio::test]
async fn a_wrong_key_cannot_decrypt() {
    let h = harness();
    h.create("k", "v").await;
    h.put_param("/p", "secret", ParameterType::SecureString, false)
        .await
        .unwrap();
    let other = Vault::new(&[1u8; 32]).unwrap();
    let sm = SecretsManager::new(h.store.clone(), b"k".to_vec(), other.clone());
    let r = sm
        .get_secret_value(
            &h.ctx,
            GetSecretValueRequest {
                secret_id: "k".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(code(r), "DecryptionFailure");
    let ssm = ParameterStore::new(h.store.clone(), b"k".to_vec(), other);
    let r = ssm
        .get_parameter(
            &h.ctx,
            GetParameterRequest {
                name: "/p".into(),
                with_decryption: Some(true),
            },
        )
        .await;
    assert_eq!(code(r), "InvalidKeyId");
}

#[tokio::test]
async fn plaintext_never_reaches_the_database_files() {
    let h = harness();
    let secret = "correct-horse-battery-staple-7f3a";
    let param = "tr0ub4dor-and-3-9b1c";
    h.create("plain/check", secret).await;
    h.put_param("/plain/check", param, ParameterType::SecureString, false)
        .await
        .unwrap();
    assert_eq!(
        h.get("plain/check").await.unwrap().secret_string.as_deref(),
        Some(secret)
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        seen += bytes.len();
        for needle in [secret, param] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} on disk"
            );
        }
    }
    assert!(seen > 0);
}

#[tokio::test]
async fn parameters_versions_and_overwrite() {
    let h = harness();
    assert_eq!(
        h.put_param("/app/db/host", "a", ParameterType::String, false)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        code(
            h.put_param("/app/db/host", "b", ParameterType::String, false)
                .await
        ),
        "ParameterAlreadyExists"
    );
    assert_eq!(
        h.put_param("/app/db/host", "b", ParameterType::String, true)
            .await
            .unwrap(),
        2
    );
    let p = h.get_param("/app/db/host", false).await.unwrap();
    assert_eq!((p.value.as_deref(), p.version), (Some("b"), Some(2)));
    assert_eq!(
        p.arn.as_deref(),
        Some("arn:aws:ssm:us-east-1:123456789012:parameter/app/db/host")
    );
    // By ARN and with a version selector.
    let by_arn = h
        .get_param(
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/host",
            false,
        )
        .await
        .unwrap();
    assert_eq!(by_arn.name.as_deref(), Some("/app/db/host"));
    assert_eq!(
        h.get_param("/app/db/host:2", false)
            .await
            .unwrap()
            .selector
            .as_deref(),
        Some(":2")
    );
    assert_eq!(
        code(h.get_param("/app/db/host:1", false).await),
        "ParameterVersionNotFound"
    );
    assert_eq!(
        code(h.get_param("/missing", false).await),
        "ParameterNotFound"
    );
    for bad in ["no/leading", "/a//b", "/aws/x", "ssm-thing", "/bad name"] {
        assert_eq!(
            code(h.put_param(bad, "v", ParameterType::String, false).await),
            "ValidationException",
            "{bad}"
        );
    }
    let deep = format!("/{}", vec!["l"; 16].join("/"));
    assert_eq!(
        code(h.put_param(&deep, "v", ParameterType::String, false).await),
        "HierarchyLevelLimitExceededException"
    );
}

#[tokio::test]
async fn secure_strings_need_with_decryption() {
    let h = harness();
    h.put_param("/app/key", "s3cret", ParameterType::SecureString, false)
        .await
        .unwrap();
    let hidden = h.get_param("/app/key", false).await.unwrap();
    assert_ne!(hidden.value.as_deref(), Some("s3cret"));
    assert_eq!(
        h.get_param("/app/key", true)
            .await
            .unwrap()
            .value
            .as_deref(),
        Some("s3cret")
    );
    let d = h
        .ssm
        .describe_parameters(&h.ctx, DescribeParametersRequest::default())
        .await
        .unwrap();
    let [m] = d.parameters.unwrap().try_into().unwrap();
    assert_eq!(m.key_id.as_deref(), Some("alias/aws/ssm"));
    assert_eq!(m.r#type, Some(ParameterType::SecureString));
}

#[tokio::test]
async fn get_parameters_and_by_path() {
    let h = harness();
    for n in [
        "/svc/a",
        "/svc/b",
        "/svc/deep/c",
        "/svc/deep/er/d",
        "/other/x",
        "top",
    ] {
        h.put_param(n, n, ParameterType::String, false)
            .await
            .unwrap();
    }
    let r = h
        .ssm
        .get_parameters(
            &h.ctx,
            GetParametersRequest {
                names: vec!["/svc/a".into(), "/nope".into(), "top".into()],
                with_decryption: None,
            },
        )
        .await
        .unwrap();
    let got: Vec<_> = r
        .parameters
        .unwrap()
        .into_iter()
        .map(|p| p.name.unwrap())
        .collect();
    assert_eq!(got, ["/svc/a", "top"]);
    assert_eq!(r.invalid_parameters.unwrap(), ["/nope"]);

    let hr = &h;
    let by_path = |recursive: bool, max: i32| async move {
        let h = hr;
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let r = h
                .ssm
                .get_parameters_by_path(
                    &h.ctx,
                    GetParametersByPathRequest {
                        path: "/svc".into(),
                        recursive: Some(recursive),
                        max_results: Some(max),
                        next_token: token,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            names.extend(r.parameters.unwrap().into_iter().map(|p| p.name.unwrap()));
            token = r.next_token;
            if token.is_none() {
                return names;
            }
        }
    };
    assert_eq!(by_path(false, 10).await, ["/svc/a", "/svc/b"]);
    assert_eq!(
        by_path(true, 1).await,
        ["/svc/a", "/svc/b", "/svc/deep/c", "/svc/deep/er/d"]
    );
}

#[tokio::test]
async fn delete_parameters() {
    let h = harness();
    h.put_param("/d/a", "1", ParameterType::String, false)
        .await
        .unwrap();
    h.put_param("/d/b", "1", ParameterType::StringList, false)
        .await
        .unwrap();
    h.ssm
        .delete_parameter(
            &h.ctx,
            DeleteParameterRequest {
                name: "/d/a".into(),
            },
        )
        .await
        .unwrap();
    let again = h
        .ssm
        .delete_parameter(
            &h.ctx,
            DeleteParameterRequest {
                name: "/d/a".into(),
            },
        )
        .await;
    assert_eq!(code(again), "ParameterNotFound");
    let r = h
        .ssm
        .delete_parameters(
            &h.ctx,
            DeleteParametersRequest {
                names: vec!["/d/b".into(), "/d/a".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (r.deleted_parameters.unwrap(), r.invalid_parameters.unwrap()),
        (vec!["/d/b".to_string()], vec!["/d/a".to_string()])
    );
}
