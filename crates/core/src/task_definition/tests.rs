use super::*;
use berth_wire::ecs::{HealthCheck, PortMapping};

fn container(name: &str) -> ContainerDefinition {
    ContainerDefinition {
        name: Some(name.into()),
        image: Some("busybox".into()),
        memory: Some(128),
        ..Default::default()
    }
}

fn request(containers: Vec<ContainerDefinition>) -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: "web".into(),
        container_definitions: containers,
        ..Default::default()
    }
}

fn err(req: &RegisterTaskDefinitionRequest) -> String {
    validate(req).unwrap_err().to_string()
}

#[test]
fn accepts_a_plain_definition() {
    validate(&request(vec![container("app")])).unwrap();
}

#[test]
fn family_and_container_names() {
    let mut r = request(vec![container("app")]);
    r.family = "bad name!".into();
    assert!(err(&r).contains("Family"));
    let r = request(vec![container("app"), container("app")]);
    assert!(err(&r).contains("Duplicate"));
    let r = request(vec![]);
    assert!(err(&r).contains("empty"));
}

#[test]
fn needs_an_essential_container() {
    let mut c = container("app");
    c.essential = Some(false);
    assert!(err(&request(vec![c])).contains("essential"));
}

#[test]
fn fargate_rules() {
    let mut r = request(vec![container("app")]);
    r.requires_compatibilities = Some(vec![Compatibility::Fargate]);
    r.cpu = Some("256".into());
    r.memory = Some("512".into());
    assert!(err(&r).contains("awsvpc"));
    r.network_mode = Some(NetworkMode::Awsvpc);
    validate(&r).unwrap();
    r.memory = Some("4096".into());
    assert_eq!(validate(&r).unwrap_err().aws_code(), "ClientException");
    r.memory = Some("1 GB".into());
    validate(&r).unwrap();
}

#[test]
fn memory_rules() {
    let mut c = container("app");
    c.memory = None;
    assert!(err(&request(vec![c.clone()])).contains("memoryReservation"));
    c.memory = Some(100);
    c.memory_reservation = Some(200);
    assert!(err(&request(vec![c])).contains("memoryReservation"));
}

#[test]
fn port_rules() {
    let mut c = container("app");
    c.port_mappings = Some(vec![PortMapping {
        container_port: Some(80),
        host_port: Some(8080),
        ..Default::default()
    }]);
    let mut r = request(vec![c]);
    validate(&r).unwrap();
    r.network_mode = Some(NetworkMode::Awsvpc);
    assert!(err(&r).contains("must match"));
}

#[test]
fn unknown_enum_values_are_invalid_parameters() {
    let mut r = request(vec![container("app")]);
    r.network_mode = Some(NetworkMode::from("bridged"));
    assert_eq!(
        validate(&r).unwrap_err().aws_code(),
        "InvalidParameterException"
    );
}

#[test]
fn health_check_ranges() {
    let mut c = container("app");
    c.health_check = Some(HealthCheck {
        command: vec!["CMD".into(), "true".into()],
        interval: Some(1),
        ..Default::default()
    });
    assert!(err(&request(vec![c])).contains("health check"));
}

#[test]
fn build_fills_ecs_defaults() {
    let mut c = container("app");
    c.port_mappings = Some(vec![PortMapping {
        container_port: Some(80),
        ..Default::default()
    }]);
    let mut r = request(vec![c]);
    r.cpu = Some("1 vCPU".into());
    r.memory = Some("2 GB".into());
    let td = build(
        r,
        &Registration {
            region: "us-east-1",
            account: "123456789012",
            revision: 3,
            registered_by: "arn:aws:iam::123456789012:root",
            now: Timestamp(1.0),
        },
    );
    assert_eq!(
        td.task_definition_arn.as_deref(),
        Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3")
    );
    assert_eq!(td.cpu.as_deref(), Some("1024"));
    assert_eq!(td.memory.as_deref(), Some("2048"));
    let c = &td.container_definitions.as_ref().unwrap()[0];
    assert_eq!(c.essential, Some(true));
    let pm = &c.port_mappings.as_ref().unwrap()[0];
    assert_eq!(pm.host_port, Some(0));
    assert_eq!(pm.protocol, Some(TransportProtocol::Tcp));
    assert_eq!(
        td.compatibilities,
        Some(vec![Compatibility::External, Compatibility::Ec2])
    );
}

#[test]
fn quotas_and_awsvpc_hostname() {
    let many: Vec<_> = (0..11).map(|i| container(&format!("c{i}"))).collect();
    assert!(err(&request(many)).contains("at most 10"));
    let mut big = container("big");
    big.environment = Some(
        (0..400)
            .map(|i| berth_wire::ecs::KeyValuePair {
                name: Some(format!("VAR_{i}")),
                value: Some("x".repeat(200)),
            })
            .collect(),
    );
    assert!(err(&request(vec![big])).contains("64 KiB"));
    let mut named = container("web");
    named.hostname = Some("web".into());
    let mut r = request(vec![named]);
    validate(&r).unwrap();
    r.network_mode = Some(NetworkMode::Awsvpc);
    assert!(err(&r).contains("hostname"));
}
