//! Checks of the generated service modules' conventions.

use berth_wire::{ecs, logs, secretsmanager, ssm, ApiError, RequestContext};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future that never waits on I/O (the default trait methods).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn absent_members_are_not_serialized() {
    let c = ecs::Cluster {
        cluster_name: Some("x".to_string()),
        ..Default::default()
    };
    assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"clusterName":"x"}"#);
    assert_eq!(
        serde_json::to_string(&ecs::Cluster::default()).unwrap(),
        "{}"
    );
}

#[test]
fn enums_round_trip_and_keep_unknown_values() {
    let t: ecs::LaunchType = serde_json::from_str(r#""FARGATE""#).unwrap();
    assert_eq!(t, ecs::LaunchType::Fargate);
    assert_eq!(serde_json::to_string(&t).unwrap(), r#""FARGATE""#);
    let u: ecs::LaunchType = serde_json::from_str(r#""MOON""#).unwrap();
    assert_eq!(u, ecs::LaunchType::Unknown("MOON".to_string()));
    assert!(!u.is_known());
    assert_eq!(serde_json::to_string(&u).unwrap(), r#""MOON""#);
    assert!(serde_json::from_str::<ecs::LaunchType>("3").is_err());
    assert_eq!(
        ecs::LaunchType::default().as_str(),
        ecs::LaunchType::VALUES[0]
    );
    assert_eq!(ecs::LaunchType::from("EC2").to_string(), "EC2");
    // The model's own "UNKNOWN" value cannot take the catch-all's name.
    assert_eq!(
        ecs::HealthStatus::from("UNKNOWN"),
        ecs::HealthStatus::UnknownValue
    );
}

#[test]
fn operations_are_complete_and_named() {
    assert_eq!(ecs::Operation::ALL.len(), 77);
    assert_eq!(logs::Operation::ALL.len(), 17);
    assert_eq!(secretsmanager::Operation::ALL.len(), 6);
    assert_eq!(ssm::Operation::ALL.len(), 7);
    for op in ecs::Operation::ALL {
        assert_eq!(ecs::Operation::from_name(op.name()), Some(*op));
    }
    assert_eq!(
        ecs::Operation::from_target("AmazonEC2ContainerServiceV20141113.CreateCluster"),
        Some(ecs::Operation::CreateCluster)
    );
    assert_eq!(ecs::Operation::from_name("Nope"), None);
    assert!(ecs::modeled_errors(ecs::Operation::CreateCluster).contains(&("ServerException", 500)));
}

#[test]
fn required_members_are_required() {
    let e = serde_json::from_str::<ecs::DescribeClustersRequest>("{}");
    assert!(e.is_ok(), "DescribeClustersRequest has no required member");
    let e = serde_json::from_str::<ecs::CreateServiceRequest>("{}").unwrap_err();
    assert!(e.to_string().contains("missing field `serviceName`"), "{e}");
    let e = berth_wire::codec::decode::<ecs::CreateServiceRequest>(b"{}").unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
}

struct Nothing;
impl ecs::EcsApi for Nothing {}
impl logs::LogsApi for Nothing {}

#[test]
fn default_methods_answer_not_implemented() {
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    let e: ApiError = block_on(ecs::dispatch(
        &Nothing,
        &ctx,
        ecs::Operation::CreateCluster,
        b"{}",
    ))
    .unwrap_err();
    // CreateCluster does not model UnsupportedFeatureException: the fallback.
    assert_eq!(e.code, "ClientException");
    assert_eq!(e.status, 400);
    assert!(e.message.contains("CreateCluster"), "{}", e.message);
    // Every operation answers one of its own modeled errors.
    for op in ecs::Operation::ALL {
        let e = block_on(ecs::dispatch(&Nothing, &ctx, *op, b"{}")).unwrap_err();
        if e.code == "InvalidParameterException" && e.message.starts_with("Missing required") {
            continue; // input with required members fails before the handler
        }
        assert!(
            ecs::modeled_errors(*op)
                .iter()
                .any(|(code, _)| *code == e.code),
            "{op}: {} is not modeled",
            e.code
        );
    }
    let e = block_on(logs::dispatch(
        &Nothing,
        &ctx,
        logs::Operation::CreateLogGroup,
        b"",
    ))
    .unwrap_err();
    // The body is decoded first: a missing required member wins.
    assert_eq!(e.code, "InvalidParameterException");
}

#[test]
fn dispatch_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    let svc: &dyn ecs::EcsApi = &Nothing;
    is_send(&ecs::dispatch(
        svc,
        &ctx,
        ecs::Operation::ListClusters,
        b"{}",
    ));
}

struct Implemented;
#[async_trait::async_trait]
impl ecs::EcsApi for Implemented {
    async fn list_clusters(
        &self,
        _ctx: &RequestContext,
        input: ecs::ListClustersRequest,
    ) -> Result<ecs::ListClustersResponse, ApiError> {
        Ok(ecs::ListClustersResponse {
            cluster_arns: Some(vec![format!("max={:?}", input.max_results)]),
            next_token: None,
        })
    }
}

#[test]
fn dispatch_decodes_calls_and_encodes() {
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    let out = block_on(ecs::dispatch(
        &Implemented,
        &ctx,
        ecs::Operation::ListClusters,
        br#"{"maxResults":5}"#,
    ))
    .unwrap();
    assert_eq!(out, br#"{"clusterArns":["max=Some(5)"]}"#);
}

#[test]
fn unknown_enum_values_are_refused_with_their_member_path() {
    use berth_wire::ecs::RegisterTaskDefinitionRequest;
    let body = br#"{"family":"f","containerDefinitions":[{"name":"a"},{"name":"b","portMappings":[{"containerPort":80,"protocol":"sctp"}]}]}"#;
    let input: RegisterTaskDefinitionRequest = berth_wire::codec::decode(body).unwrap();
    let err = berth_wire::validate::reject_unknown_enums(&input, "InvalidParameterException")
        .unwrap_err();
    assert_eq!(err.code, "InvalidParameterException");
    assert!(
        err.message
            .contains("'sctp' at 'containerDefinitions[1].portMappings[0].protocol'"),
        "{}",
        err.message
    );
    assert!(err.message.contains("[tcp, udp]"), "{}", err.message);
    let ok: RegisterTaskDefinitionRequest =
        berth_wire::codec::decode(br#"{"family":"f","containerDefinitions":[{"name":"a","portMappings":[{"protocol":"udp"}]}]}"#).unwrap();
    assert!(berth_wire::validate::reject_unknown_enums(&ok, "X").is_ok());
}
