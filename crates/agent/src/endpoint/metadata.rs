//! The task metadata endpoint's JSON (version 4; version 3 is served the
//! same): what a task's container reads about itself and its task, with
//! ECS's member names.

use berth_runtime::{ContainerSpec, PortBinding, Protocol};
use berth_wire::agent::AssignedTask;
use berth_wire::ecs::{LaunchType, Task};
use berth_wire::Timestamp;
use serde_json::{json, Map, Value};

/// What a container is as it runs now.
#[derive(Debug, Clone, Default)]
pub struct ContainerNow {
    pub docker_id: Option<String>,
    pub known_status: String,
    pub exit_code: Option<i32>,
    pub ports: Vec<PortBinding>,
}

/// What the task is as it runs now (reported by its runner).
#[derive(Debug, Clone, Default)]
pub struct TaskNow {
    pub known_status: String,
    pub desired_status: String,
    pub pull_started_at: Option<Timestamp>,
    pub pull_stopped_at: Option<Timestamp>,
    /// The awsvpc task's address.
    pub ipv4: Option<String>,
    /// By container name.
    pub containers: Vec<(String, ContainerNow)>,
}

/// The parts of a task that do not change while it runs.
#[derive(Debug, Clone)]
pub struct TaskFacts {
    task: Task,
    family: String,
    revision: i32,
    network_mode: String,
    containers: Vec<ContainerFacts>,
}

#[derive(Debug, Clone)]
struct ContainerFacts {
    name: String,
    image: String,
    arn: Option<String>,
    labels: Map<String, Value>,
    cpu: u32,
    memory: Option<u32>,
    log_driver: Option<String>,
    log_options: Option<Map<String, Value>>,
}

fn rfc3339(t: Timestamp) -> Value {
    let nanos = (t.0 * 1e9) as i128;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

impl TaskFacts {
    pub fn new(a: &AssignedTask, specs: &[ContainerSpec]) -> TaskFacts {
        let td = &a.task_definition;
        let containers = crate::spec::containers(&a.task, td)
            .into_iter()
            .zip(specs)
            .map(|(c, spec)| {
                let name = c.name.clone().unwrap_or_default();
                let arn = a
                    .task
                    .containers
                    .iter()
                    .flatten()
                    .find(|x| x.name.as_deref() == Some(&name))
                    .and_then(|x| x.container_arn.clone());
                let mut labels: Map<String, Value> = spec
                    .docker_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                let task_arn = a.task.task_arn.clone().unwrap_or_default();
                labels.insert(
                    "com.amazonaws.ecs.cluster".into(),
                    json!(a.task.cluster_arn.clone().unwrap_or_default()),
                );
                labels.insert("com.amazonaws.ecs.container-name".into(), json!(name));
                labels.insert("com.amazonaws.ecs.task-arn".into(), json!(task_arn));
                labels.insert(
                    "com.amazonaws.ecs.task-definition-family".into(),
                    json!(td.family.clone().unwrap_or_default()),
                );
                labels.insert(
                    "com.amazonaws.ecs.task-definition-version".into(),
                    json!(td.revision.unwrap_or_default().to_string()),
                );
                let log = c.log_configuration.as_ref();
                ContainerFacts {
                    image: c.image.clone().unwrap_or_default(),
                    arn,
                    labels,
                    cpu: c.cpu.unwrap_or(0).max(0) as u32,
                    memory: c.memory.or(c.memory_reservation).map(|m| m.max(0) as u32),
                    log_driver: log.map(|l| l.log_driver.as_str().to_string()),
                    log_options: log
                        .and_then(|l| l.options.as_ref())
                        .map(|o| o.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                    name,
                }
            })
            .collect();
        TaskFacts {
            family: td.family.clone().unwrap_or_default(),
            revision: td.revision.unwrap_or_default(),
            network_mode: td
                .network_mode
                .as_ref()
                .map_or("bridge".to_string(), |m| m.as_str().to_string()),
            task: a.task.clone(),
            containers,
        }
    }

    pub fn task_arn(&self) -> &str {
        self.task.task_arn.as_deref().unwrap_or_default()
    }

    /// `GET ${ECS_CONTAINER_METADATA_URI_V4}`: one container.
    pub fn container(&self, name: &str, now: &TaskNow) -> Option<Value> {
        let f = self.containers.iter().find(|c| c.name == name)?;
        let state = now
            .containers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let mut c = Map::new();
        let id = state.docker_id.clone().unwrap_or_default();
        c.insert("DockerId".into(), json!(id));
        c.insert("Name".into(), json!(f.name));
        let task_id = self.task_arn().rsplit('/').next().unwrap_or_default();
        c.insert(
            "DockerName".into(),
            json!(format!("berth-{task_id}-{}", f.name)),
        );
        c.insert("Image".into(), json!(f.image));
        c.insert("ImageID".into(), json!(""));
        c.insert("Labels".into(), Value::Object(f.labels.clone()));
        c.insert("DesiredStatus".into(), json!(now.desired_status));
        c.insert("KnownStatus".into(), json!(state.known_status));
        let mut limits = Map::new();
        limits.insert("CPU".into(), json!(f.cpu));
        if let Some(m) = f.memory {
            limits.insert("Memory".into(), json!(m));
        }
        c.insert("Limits".into(), Value::Object(limits));
        if let Some(code) = state.exit_code {
            c.insert("ExitCode".into(), json!(code));
        }
        c.insert("Type".into(), json!("NORMAL"));
        if let Some(d) = &f.log_driver {
            c.insert("LogDriver".into(), json!(d));
        }
        if let Some(o) = &f.log_options {
            c.insert("LogOptions".into(), Value::Object(o.clone()));
        }
        if let Some(arn) = &f.arn {
            c.insert("ContainerARN".into(), json!(arn));
        }
        let ports: Vec<Value> = state
            .ports
            .iter()
            .map(|p| {
                json!({
                    "ContainerPort": p.container_port,
                    "Protocol": if p.protocol == Protocol::Udp { "udp" } else { "tcp" },
                    "HostPort": p.host_port,
                    "HostIp": p.bind_ip,
                })
            })
            .collect();
        if !ports.is_empty() {
            c.insert("Ports".into(), Value::Array(ports));
        }
        let mut network = Map::new();
        network.insert("NetworkMode".into(), json!(self.network_mode));
        if let Some(ip) = &now.ipv4 {
            network.insert("IPv4Addresses".into(), json!([ip]));
            network.insert("AttachmentIndex".into(), json!(0));
        }
        c.insert("Networks".into(), json!([network]));
        Some(Value::Object(c))
    }

    /// `GET ${ECS_CONTAINER_METADATA_URI_V4}/task`: the task and every container.
    pub fn task(&self, now: &TaskNow) -> Value {
        let t = &self.task;
        let mut m = Map::new();
        m.insert(
            "Cluster".into(),
            json!(t.cluster_arn.clone().unwrap_or_default()),
        );
        m.insert("TaskARN".into(), json!(self.task_arn()));
        m.insert("Family".into(), json!(self.family));
        m.insert("Revision".into(), json!(self.revision.to_string()));
        m.insert("DesiredStatus".into(), json!(now.desired_status));
        m.insert("KnownStatus".into(), json!(now.known_status));
        if let Some(service) = t.group.as_deref().and_then(|g| g.strip_prefix("service:")) {
            m.insert("ServiceName".into(), json!(service));
        }
        // Task-level limits: CPU in vCPUs, memory in MiB.
        let mut limits = Map::new();
        if let Some(cpu) = t.cpu.as_deref().and_then(|c| c.parse::<f64>().ok()) {
            limits.insert("CPU".into(), json!(cpu / 1024.0));
        }
        if let Some(mem) = t.memory.as_deref().and_then(|c| c.parse::<u64>().ok()) {
            limits.insert("Memory".into(), json!(mem));
        }
        if !limits.is_empty() {
            m.insert("Limits".into(), Value::Object(limits));
        }
        if let Some(at) = now.pull_started_at.or(t.pull_started_at) {
            m.insert("PullStartedAt".into(), rfc3339(at));
        }
        if let Some(at) = now.pull_stopped_at.or(t.pull_stopped_at) {
            m.insert("PullStoppedAt".into(), rfc3339(at));
        }
        if let Some(az) = &t.availability_zone {
            m.insert("AvailabilityZone".into(), json!(az));
        }
        let launch = match t.launch_type {
            Some(LaunchType::Fargate) => "FARGATE",
            Some(LaunchType::External) => "EXTERNAL",
            _ => "EC2",
        };
        m.insert("LaunchType".into(), json!(launch));
        let containers: Vec<Value> = self
            .containers
            .iter()
            .filter_map(|c| self.container(&c.name, now))
            .collect();
        m.insert("Containers".into(), Value::Array(containers));
        Value::Object(m)
    }
}

impl TaskFacts {
    pub fn container_names(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.name.clone()).collect()
    }

    pub fn is_fargate(&self) -> bool {
        self.task.launch_type == Some(LaunchType::Fargate)
    }

    pub fn cluster(&self) -> String {
        self.task.cluster_arn.clone().unwrap_or_default()
    }
}
