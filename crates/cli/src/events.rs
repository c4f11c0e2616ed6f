//! `berth events`: streams a server's events (ECS's by default) to the
//! terminal, one line each, the way an EventBridge user would watch them:
//! through a rule and a queue of its own, made at start and removed on
//! Ctrl-C (should it be killed instead, they stay, named
//! `berth-events-<id>`).

use serde_json::{json, Value};
use std::time::Duration;

#[derive(clap::Args)]
pub struct EventsArgs {
    /// The server, and the region whose events to show.
    #[command(flatten)]
    client: crate::client::ClientArgs,
    /// An EventBridge event pattern (JSON) choosing the events.
    #[arg(long, default_value = r#"{"source": ["aws.ecs"]}"#)]
    pattern: String,
    /// Print each event's full JSON instead of a summary line.
    #[arg(long)]
    json: bool,
}

const SQS: &str = "AmazonSQS";
const EVENTS: &str = "AWSEvents";
const CALL: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_secs(30);

pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let api = args.client.connect()?;
    let name = format!(
        "berth-events-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let sqs = |op: &str, body: Value, t| {
        let target = format!("{SQS}.{op}");
        let api = &api;
        async move { api.call_json("sqs", &target, &body, t).await }
    };
    let events = |op: &str, body: Value| {
        let target = format!("{EVENTS}.{op}");
        let api = &api;
        async move { api.call_json("events", &target, &body, CALL).await }
    };
    let url = sqs("CreateQueue", json!({"QueueName": name}), CALL).await?["QueueUrl"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let attrs = sqs(
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}),
        CALL,
    )
    .await?;
    let arn = attrs["Attributes"]["QueueArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let setup = async {
        events(
            "PutRule",
            json!({"Name": name, "EventPattern": args.pattern}),
        )
        .await?;
        events(
            "PutTargets",
            json!({"Rule": name, "Targets": [{"Id": "berth-events", "Arn": arn}]}),
        )
        .await
    };
    if let Err(e) = setup.await {
        let _ = sqs("DeleteQueue", json!({"QueueUrl": url}), CALL).await;
        return Err(e);
    }
    eprintln!("watching events matching {} (Ctrl-C to stop)", args.pattern);
    let watch = async {
        loop {
            let got = sqs(
                "ReceiveMessage",
                json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20}),
                POLL,
            )
            .await?;
            for m in got["Messages"].as_array().into_iter().flatten() {
                let body = m["Body"].as_str().unwrap_or_default();
                match serde_json::from_str::<Value>(body) {
                    Ok(ev) if args.json => println!("{ev}"),
                    Ok(ev) => println!("{}", summary(&ev)),
                    Err(_) => println!("{body}"),
                }
                let handle = m["ReceiptHandle"].clone();
                sqs(
                    "DeleteMessage",
                    json!({"QueueUrl": url, "ReceiptHandle": handle}),
                    CALL,
                )
                .await?;
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    };
    let result = tokio::select! {
        r = watch => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let _ = events(
        "RemoveTargets",
        json!({"Rule": name, "Ids": ["berth-events"]}),
    )
    .await;
    let _ = events("DeleteRule", json!({"Name": name})).await;
    let _ = sqs("DeleteQueue", json!({"QueueUrl": url}), CALL).await;
    result
}

/// The last part of an ARN (`cluster/task-id`), for narrow terminals.
fn short(arn: &str) -> &str {
    arn.split_once('/').map_or(arn, |(_, rest)| rest)
}

/// One line for a person: time, what, which, and its state.
pub fn summary(ev: &Value) -> String {
    let d = &ev["detail"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let time = s(&ev["time"]);
    let what = s(&ev["detail-type"]);
    let text = match what.as_str() {
        "ECS Task State Change" => {
            let mut t = format!(
                "task {} {} (desired {})",
                short(&s(&d["taskArn"])),
                s(&d["lastStatus"]),
                s(&d["desiredStatus"])
            );
            if let Some(code) = d["stopCode"].as_str() {
                t += &format!(" {code}: {}", s(&d["stoppedReason"]));
            }
            for c in d["containers"].as_array().into_iter().flatten() {
                if let Some(x) = c["exitCode"].as_i64() {
                    t += &format!(" [{} exit {x}]", s(&c["name"]));
                }
            }
            t
        }
        "ECS Container Instance State Change" => format!(
            "instance {} {} agentConnected={}",
            short(&s(&d["containerInstanceArn"])),
            s(&d["status"]),
            d["agentConnected"]
        ),
        "ECS Service Action" | "ECS Deployment State Change" => format!(
            "service {} {} {}",
            ev["resources"][0].as_str().map(short).unwrap_or(""),
            s(&d["eventName"]),
            s(&d["deploymentId"])
        ),
        _ => format!("{} {}", s(&ev["source"]), d),
    };
    format!("{time}  {what}: {}", text.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_a_stopped_task() {
        let ev = json!({"time": "2024-01-01T00:00:00Z", "detail-type": "ECS Task State Change",
            "detail": {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/abc", "lastStatus": "STOPPED",
                       "desiredStatus": "STOPPED", "stopCode": "EssentialContainerExited",
                       "stoppedReason": "Essential container in task exited",
                       "containers": [{"name": "app", "exitCode": 3}]}});
        assert_eq!(
            summary(&ev),
            "2024-01-01T00:00:00Z  ECS Task State Change: task c/abc STOPPED (desired STOPPED) \
EssentialContainerExited: Essential container in task exited [app exit 3]"
        );
    }
}
