//! Task-definition validation under hostile input: any JSON that decodes
//! as a RegisterTaskDefinition request is either refused with a client
//! error or accepted and built, never a panic; and whatever is accepted
//! for FARGATE passes the Fargate sandbox's own check again. (proptest
//! stands in for a coverage-guided fuzzer: it runs in `cargo test`,
//! bounded, on the stable toolchain.)

use berth_core::fargate::sandbox;
use berth_core::task_definition::{build, validate};
use berth_wire::ecs::RegisterTaskDefinitionRequest;
use proptest::prelude::*;
use serde_json::{json, Value};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{0,12}",
        Just("/var/run/docker.sock".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("arn:aws:s3:::bucket/key.env".to_string()),
        ".{0,20}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::from),
        (0i64..70_000).prop_map(Value::from),
        Just(Value::from(-1)),
    ]
}

fn container() -> impl Strategy<Value = Value> {
    (
        text(),
        prop::option::of(number()),
        prop::option::of(number()),
        prop::option::of(any::<bool>()),
        prop::collection::vec((number(), prop::option::of(number())), 0..3),
        prop::option::of(prop::collection::vec(text(), 0..3)),
        prop::option::of(prop::collection::vec(text(), 0..2)),
        prop::option::of(prop::collection::vec(text(), 0..2)),
    )
        .prop_map(
            |(name, cpu, memory, privileged, ports, caps, devices, env_files)| {
                let mut c = json!({"name": name, "image": "busybox"});
                if let Some(v) = cpu {
                    c["cpu"] = v;
                }
                if let Some(v) = memory {
                    c["memory"] = v;
                }
                if let Some(p) = privileged {
                    c["privileged"] = json!(p);
                }
                c["portMappings"] = ports
                    .into_iter()
                    .map(|(cp, hp)| {
                        let mut m = json!({"containerPort": cp});
                        if let Some(h) = hp {
                            m["hostPort"] = h;
                        }
                        m
                    })
                    .collect();
                if let Some(caps) = caps {
                    c["linuxParameters"] = json!({"capabilities": {"add": caps}});
                }
                if let Some(d) = devices {
                    let devs: Vec<Value> = d.into_iter().map(|p| json!({"hostPath": p})).collect();
                    c["linuxParameters"]["devices"] = json!(devs);
                }
                if let Some(f) = env_files {
                    let files: Vec<Value> = f
                        .into_iter()
                        .map(|v| json!({"value": v, "type": "s3"}))
                        .collect();
                    c["environmentFiles"] = json!(files);
                }
                c
            },
        )
}

fn request() -> impl Strategy<Value = Value> {
    (
        text(),
        prop::collection::vec(container(), 0..4),
        prop::option::of(prop_oneof![
            Just("awsvpc"),
            Just("bridge"),
            Just("host"),
            Just("none"),
            Just("moon")
        ]),
        prop::option::of(prop::collection::vec(
            prop_oneof![Just("FARGATE"), Just("EC2"), Just("EXTERNAL")],
            0..3,
        )),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::collection::vec((text(), prop::option::of(text())), 0..3),
    )
        .prop_map(|(family, containers, mode, compat, cpu, memory, volumes)| {
            let mut r = json!({"family": family, "containerDefinitions": containers});
            if let Some(m) = mode {
                r["networkMode"] = json!(m);
            }
            if let Some(c) = compat {
                r["requiresCompatibilities"] = json!(c);
            }
            if let Some(c) = cpu {
                r["cpu"] = json!(c);
            }
            if let Some(m) = memory {
                r["memory"] = json!(m);
            }
            r["volumes"] = volumes
                .into_iter()
                .map(|(name, source)| match source {
                    Some(p) => json!({"name": name, "host": {"sourcePath": p}}),
                    None => json!({"name": name}),
                })
                .collect();
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn validation_refuses_or_accepts_without_panicking(v in request()) {
        let Ok(req) = serde_json::from_value::<RegisterTaskDefinitionRequest>(v) else {
            return Ok(()); // the decoder refuses it first (tested in the wire crate)
        };
        match validate(&req) {
            Err(e) => prop_assert!(
                matches!(e.aws_code(), "ClientException" | "InvalidParameterException"),
                "{}: {}", e.aws_code(), e
            ),
            Ok(()) => {
                let fargate = req
                    .requires_compatibilities
                    .iter()
                    .flatten()
                    .any(|c| c.as_str() == "FARGATE");
                if fargate {
                    prop_assert!(sandbox::check_definition((&req).into()).is_ok());
                }
                let reg = berth_core::task_definition::Registration {
                    region: "us-east-1",
                    account: "123456789012",
                    revision: 1,
                    registered_by: "arn:aws:iam::123456789012:root",
                    now: berth_wire::Timestamp::from_millis(0),
                };
                let _ = build(req, &reg);
            }
        }
    }
}
