//! The request decoder under hostile input: arbitrary bytes and arbitrary
//! JSON, sent to every operation of every service. Whatever arrives, the
//! answer is an error in the AWS envelope with a client status, never a
//! panic or a server fault. (proptest stands in for a coverage-guided
//! fuzzer: it runs in `cargo test`, bounded, on the stable toolchain.)

use berth_wire::{ecs, logs, secretsmanager, ssm, ApiError, RequestContext};
use proptest::prelude::*;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

struct Nothing;
impl ecs::EcsApi for Nothing {}
impl logs::LogsApi for Nothing {}
impl secretsmanager::SecretsManagerApi for Nothing {}
impl ssm::SsmApi for Nothing {}

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
        // Names members of real shapes use, so decoding goes deep.
        prop_oneof![
            Just("cluster"),
            Just("FARGATE"),
            Just("taskDefinition"),
            Just("containerDefinitions"),
            Just("name"),
            Just("tags"),
            Just("key"),
            Just("value"),
            Just("count"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("cluster".to_string()),
                    Just("taskDefinition".to_string()),
                    Just("containerDefinitions".to_string()),
                    Just("family".to_string()),
                    Just("tags".to_string()),
                    Just("count".to_string()),
                    Just("include".to_string()),
                    Just("logGroupName".to_string()),
                    Just("SecretId".to_string()),
                    Just("Name".to_string()),
                    "[a-zA-Z]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check(e: ApiError) -> Result<(), TestCaseError> {
    prop_assert!(
        e.status == 400,
        "{} answered {}: {}",
        e.code,
        e.status,
        e.message
    );
    prop_assert!(!e.code.is_empty());
    let body: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
    prop_assert_eq!(body["__type"].as_str(), Some(e.code.as_ref()));
    Ok(())
}

fn all(body: &[u8]) -> Result<(), TestCaseError> {
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    for op in ecs::Operation::ALL {
        check(block_on(ecs::dispatch(&Nothing, &ctx, *op, body)).unwrap_err())?;
    }
    for op in logs::Operation::ALL {
        check(block_on(logs::dispatch(&Nothing, &ctx, *op, body)).unwrap_err())?;
    }
    for op in secretsmanager::Operation::ALL {
        check(block_on(secretsmanager::dispatch(&Nothing, &ctx, *op, body)).unwrap_err())?;
    }
    for op in ssm::Operation::ALL {
        check(block_on(ssm::dispatch(&Nothing, &ctx, *op, body)).unwrap_err())?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_are_refused_cleanly(body in prop::collection::vec(any::<u8>(), 0..256)) {
        all(&body)?;
    }

    #[test]
    fn arbitrary_json_is_refused_cleanly(v in json()) {
        all(&serde_json::to_vec(&v).unwrap())?;
    }
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    all(deep.as_bytes()).unwrap();
    let objects = "{\"a\":".repeat(50_000) + "1" + &"}".repeat(50_000);
    all(objects.as_bytes()).unwrap();
}
