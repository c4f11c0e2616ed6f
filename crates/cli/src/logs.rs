//! `berth logs`: a task's awslogs output, read from the server as any
//! CloudWatch Logs client would (DescribeTasks for the task's revision,
//! DescribeTaskDefinition for its containers' log configuration,
//! GetLogEvents per stream), without the AWS CLI.

use anyhow::bail;
use berth_agent::http::HttpControlPlane;
use berth_agent::logs::{destination, Destination};
use berth_wire::ecs::{
    DescribeTaskDefinitionRequest, DescribeTaskDefinitionResponse, DescribeTasksRequest,
    DescribeTasksResponse, Task,
};
use berth_wire::logs::{GetLogEventsRequest, GetLogEventsResponse};
use serde::{de::DeserializeOwned, Serialize};
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
    client: crate::client::ClientArgs,
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
