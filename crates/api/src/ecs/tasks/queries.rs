//! DescribeTasks and ListTasks.

use super::*;

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeTasksRequest,
) -> Result<DescribeTasksResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    if input.tasks.is_empty() || input.tasks.len() > 100 {
        return Err(EcsError::invalid(
            "Between 1 and 100 tasks can be described at a time.",
        ));
    }
    let include_tags = input.include.unwrap_or_default().contains(&TaskField::Tags);
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for r in &input.tasks {
        match find(ecs, ctx, &cluster, r).await? {
            Some(d) => tasks.push(view(&d.value, include_tags)),
            None => failures.push(Failure {
                arn: Some(if arn::looks_like_arn(r) {
                    r.clone()
                } else {
                    arn::task(&ctx.region, &ctx.account_id, &cluster, r)
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeTasksResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListTasksRequest,
) -> Result<ListTasksResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    let limit = page_size(input.max_results, 100, 100)?;
    let desired = input
        .desired_status
        .clone()
        .unwrap_or(DesiredStatus::Running);
    if !desired.is_known() {
        return Err(EcsError::invalid(format!(
            "Invalid desiredStatus '{desired}'."
        )));
    }
    if input.family.is_some() && input.service_name.is_some() {
        return Err(EcsError::invalid(
            "family and serviceName cannot both be given.",
        ));
    }
    let instance_id = match &input.container_instance {
        Some(r) => Some(
            container_instances::find(ecs, ctx, &cluster, r)
                .await?
                .map(|d| d.value.id)
                .ok_or_else(|| EcsError::invalid(format!("Unknown container instance '{r}'.")))?,
        ),
        None => None,
    };
    let filter = format!(
        "{cluster}|{:?}|{:?}|{:?}|{:?}|{desired}|{:?}",
        instance_id, input.family, input.started_by, input.service_name, input.launch_type
    );
    let page = PageKey {
        operation: "ListTasks",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &filter,
    };
    let mut after = input
        .next_token
        .as_deref()
        .map(|t| ecs.tokens.decode(&page, t))
        .transpose()?;
    let keep = |t: &TaskDoc| {
        t.task.desired_status.as_deref() == Some(desired.as_str())
            && instance_id
                .as_ref()
                .is_none_or(|i| t.instance_id.as_ref() == Some(i))
            && input
                .family
                .as_ref()
                .is_none_or(|f| t.task_definition.family.as_ref() == Some(f))
            && input
                .started_by
                .as_ref()
                .is_none_or(|s| t.task.started_by.as_ref() == Some(s))
            && input
                .service_name
                .as_ref()
                .is_none_or(|s| t.task.group.as_deref() == Some(&format!("service:{s}")))
            && input
                .launch_type
                .as_ref()
                .is_none_or(|l| t.task.launch_type.as_ref() == Some(l))
    };
    // Live tasks come from the status index, one cursor per live status
    // merged in sort order, a page at a time; a desired status of STOPPED
    // adds STOPPED tasks, read page by page in sort order and merged in, so
    // no listing decodes more of the cluster's tasks than its page needs.
    let mut live = Live {
        ecs,
        scope: scope(ctx),
        cluster: cluster.clone(),
        keep: &keep,
        cursors: TaskStatus::ALL
            .iter()
            .filter(|s| s.holds_resources())
            .map(|s| Cursor {
                status: s.as_str(),
                after: after.clone(),
                buf: Default::default(),
                done: false,
            })
            .collect(),
    };
    let mut found: Vec<TaskDoc> = Vec::new();
    if desired == DesiredStatus::Stopped {
        'scan: loop {
            let q = Query {
                parent: Some(cluster.clone()),
                status: Some(TaskStatus::Stopped.as_str().into()),
                after: after.clone(),
                limit: 1000,
                ..Default::default()
            };
            let batch = records::list::<TaskDoc>(ecs.store(), &scope(ctx), &q).await?;
            let exhausted = batch.len() < 1000;
            for d in batch {
                after = Some(d.value.sort());
                while live.peek().await?.is_some_and(|l| l < d.value.sort()) {
                    found.extend(live.next().await?);
                }
                if keep(&d.value) {
                    found.push(d.value);
                }
                if found.len() > limit {
                    break 'scan;
                }
            }
            if exhausted {
                break;
            }
        }
    }
    while found.len() <= limit {
        match live.next().await? {
            Some(t) => found.push(t),
            None => break,
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    let next_token = (more && !found.is_empty())
        .then(|| ecs.tokens.encode(&page, &found[found.len() - 1].sort()));
    Ok(ListTasksResponse {
        task_arns: Some(found.iter().map(|t| t.arn().to_string()).collect()),
        next_token,
    })
}

/// Tasks read per page of one live status.
const LIVE_PAGE: usize = 200;

/// A cluster's live tasks that `keep` accepts, in sort order: one cursor
/// per live status over the status index, merged.
struct Live<'a, F> {
    ecs: &'a Ecs,
    scope: Scope,
    cluster: String,
    keep: &'a F,
    cursors: Vec<Cursor>,
}

struct Cursor {
    status: &'static str,
    /// The last sort key read.
    after: Option<String>,
    buf: std::collections::VecDeque<TaskDoc>,
    done: bool,
}

impl<F: Fn(&TaskDoc) -> bool> Live<'_, F> {
    /// Refills the cursors that ran dry; the index of the one holding the
    /// smallest next task.
    async fn fill(&mut self) -> Result<Option<usize>, EcsError> {
        for c in &mut self.cursors {
            while c.buf.is_empty() && !c.done {
                let q = Query {
                    parent: Some(self.cluster.clone()),
                    status: Some(c.status.into()),
                    after: c.after.clone(),
                    limit: LIVE_PAGE,
                    ..Default::default()
                };
                let batch = records::list::<TaskDoc>(self.ecs.store(), &self.scope, &q).await?;
                c.done = batch.len() < LIVE_PAGE;
                for d in batch {
                    c.after = Some(d.value.sort());
                    if (self.keep)(&d.value) {
                        c.buf.push_back(d.value);
                    }
                }
            }
        }
        Ok(self
            .cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c.buf.front()?.sort())))
            .min_by(|a, b| a.1.cmp(&b.1))
            .map(|(i, _)| i))
    }

    /// The sort key of the next task.
    async fn peek(&mut self) -> Result<Option<String>, EcsError> {
        Ok(self
            .fill()
            .await?
            .and_then(|i| Some(self.cursors[i].buf.front()?.sort())))
    }

    async fn next(&mut self) -> Result<Option<TaskDoc>, EcsError> {
        Ok(self
            .fill()
            .await?
            .and_then(|i| self.cursors[i].buf.pop_front()))
    }
}
