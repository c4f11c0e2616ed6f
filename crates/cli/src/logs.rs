//! `berth logs`: a task's awslogs output, read from the server as any
//! CloudWatch Logs client would (DescribeTasks for the task's revision,
//! DescribeTaskDefinition for its containers' log configuration,
//! GetLogEvents per stream), without the AWS CLI.

use anyhow::{bail, Context};
use berth_agent::http::HttpControlPlane;
use berth_agent::logs::{destination, Destination};
use berth_wire::ecs::{
    DescribeTaskDefinitionRequest, DescribeTaskDefinitionResponse, DescribeTasksRequest,
    DescribeTasksResponse, Task,
};
use berth_wire::logs::{GetLogEventsRequest, GetLogEventsResponse};
use serde::{de::DeserializeOwned, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct LogsArgs {
    /// The task's cluster.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// The task: its ARN or id.
    #[arg(long)]
    task: String,
    /// Only this container's output (default: every container with awslogs).
    #[arg(long)]
    container: Option<String>,
    /// Keep printing new lines until the task has stopped and its last lines are read.
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// Where the server is and whom to sign as: the `berth env` variables, or
/// the server's data dir.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// The server's URL (default: the data dir's `endpoint`).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// The server's data dir, for its endpoint and first key when the
    /// environment names none.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    region: String,
    /// PEM certificates to trust for an https endpoint.
    #[arg(long, value_name = "PEM", env = "AWS_CA_BUNDLE")]
    ca: Option<PathBuf>,
}

impl ClientArgs {
    pub fn connect(&self) -> anyhow::Result<HttpControlPlane> {
        let dir = self
            .data_dir
            .clone()
            .unwrap_or_else(berth_server::config::default_data_dir);
        let endpoint = match &self.endpoint {
            Some(e) => e.clone(),
            None => std::fs::read_to_string(dir.join("endpoint"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| format!("http://{}", berth_server::DEFAULT_LISTEN)),
        };
        let (key, secret) = match (&self.access_key_id, &self.secret_access_key) {
            (Some(k), Some(s)) => (k.clone(), s.clone()),
            _ => {
                let stored = berth_server::credentials::stored(&dir)?;
                let c = stored.first().with_context(|| {
                    format!(
                        "no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and no credentials in {}",
                        dir.display()
                    )
                })?;
                (c.access_key_id.clone(), c.secret_access_key.clone())
            }
        };
        HttpControlPlane::with_ca(&endpoint, &key, &secret, &self.region, self.ca.as_deref())
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

async fn call<I: Serialize, O: DeserializeOwned>(
    server: &HttpControlPlane,
    service: &str,
    prefix: &str,
    op: &str,
    input: &I,
) -> anyhow::Result<O> {
    server
        .call_service(service, &format!("{prefix}.{op}"), input, TIMEOUT)
        .await
}

async fn describe_task(server: &HttpControlPlane, args: &LogsArgs) -> anyhow::Result<Task> {
    let req = DescribeTasksRequest {
        cluster: Some(args.cluster.clone()),
        tasks: vec![args.task.clone()],
        ..Default::default()
    };
    let out: DescribeTasksResponse = call(
        server,
        "ecs",
        berth_wire::ecs::TARGET_PREFIX,
        "DescribeTasks",
        &req,
    )
    .await?;
    match out.tasks.unwrap_or_default().into_iter().next() {
        Some(t) => Ok(t),
        None => bail!("no task {} in cluster {}", args.task, args.cluster),
    }
}

/// The awslogs destinations of the task's containers, by container name.
async fn destinations(
    server: &HttpControlPlane,
    args: &LogsArgs,
    task: &Task,
) -> anyhow::Result<Vec<(String, Destination)>> {
    let arn = task.task_arn.clone().unwrap_or_default();
    let task_id = arn.rsplit('/').next().unwrap_or_default().to_string();
    let req = DescribeTaskDefinitionRequest {
        task_definition: task.task_definition_arn.clone().unwrap_or_default(),
        ..Default::default()
    };
    let out: DescribeTaskDefinitionResponse = call(
        server,
        "ecs",
        berth_wire::ecs::TARGET_PREFIX,
        "DescribeTaskDefinition",
        &req,
    )
    .await?;
    let defs = out
        .task_definition
        .and_then(|t| t.container_definitions)
        .unwrap_or_default();
    let found: Vec<_> = defs
        .iter()
        .filter(|c| args.container.is_none() || c.name == args.container)
        .filter_map(|c| Some((c.name.clone()?, destination(c, &task_id)?)))
        .collect();
    if found.is_empty() {
        match &args.container {
            Some(c) => bail!("container {c} of the task has no awslogs log configuration"),
            None => bail!("no container of the task has an awslogs log configuration"),
        }
    }
    Ok(found)
}

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let server = args.client.connect()?;
    let task = describe_task(&server, &args).await?;
    let streams = destinations(&server, &args, &task).await?;
    let label = streams.len() > 1;
    let mut tokens: Vec<Option<String>> = vec![None; streams.len()];
    loop {
        // Whether the task had stopped before this round of reads: then
        // every line it wrote is already shipped, and one round ends it.
        let stopped_before = !args.follow
            || describe_task(&server, &args).await?.last_status.as_deref() == Some("STOPPED");
        for ((name, dest), token) in streams.iter().zip(tokens.iter_mut()) {
            loop {
                let req = GetLogEventsRequest {
                    log_group_name: Some(dest.group.clone()),
                    log_stream_name: dest.stream.clone(),
                    start_from_head: Some(true),
                    next_token: token.clone(),
                    ..Default::default()
                };
                let out: Result<GetLogEventsResponse, _> = call(
                    &server,
                    "logs",
                    berth_wire::logs::TARGET_PREFIX,
                    "GetLogEvents",
                    &req,
                )
                .await;
                let out = match out {
                    Ok(o) => o,
                    // The stream appears with the container's first line.
                    Err(e) if e.to_string().contains("ResourceNotFoundException") => break,
                    Err(e) => return Err(e),
                };
                let events = out.events.unwrap_or_default();
                for e in &events {
                    let message = e.message.as_deref().unwrap_or_default();
                    if label {
                        println!("{name} | {message}");
                    } else {
                        println!("{message}");
                    }
                }
                let next = out.next_forward_token;
                let same = next.is_none() || next == *token;
                *token = next;
                if events.is_empty() || same {
                    break;
                }
            }
        }
        if stopped_before {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
