//! `berth spot-interrupt`: interrupt one of your FARGATE_SPOT tasks as
//! Fargate reclaiming its capacity would (`BerthAdminV1.InjectSpotInterruption`).

use berth_wire::admin::{InjectSpotInterruptionRequest, InjectSpotInterruptionResponse};
use std::time::Duration;

#[derive(clap::Args)]
pub struct SpotInterruptArgs {
    /// The task's cluster.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// The task: its ARN or id.
    #[arg(long)]
    task: String,
    #[command(flatten)]
    client: crate::client::ClientArgs,
}

pub async fn run(args: SpotInterruptArgs) -> anyhow::Result<()> {
    let server = args.client.connect()?;
    let req = InjectSpotInterruptionRequest {
        cluster: Some(args.cluster.clone()),
        task: args.task.clone(),
    };
    let out: InjectSpotInterruptionResponse = server
        .call_service(
            berth_wire::admin::SIGNING_NAME,
            &format!(
                "{}.InjectSpotInterruption",
                berth_wire::admin::TARGET_PREFIX
            ),
            &req,
            Duration::from_secs(30),
        )
        .await?;
    println!(
        "{}: {} ({})",
        out.task.task_arn.unwrap_or_default(),
        out.task.stopped_reason.unwrap_or_default(),
        out.task
            .stop_code
            .map(|c| c.as_str().to_string())
            .unwrap_or_default()
    );
    Ok(())
}
