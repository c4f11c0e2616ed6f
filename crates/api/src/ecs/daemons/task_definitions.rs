//! Daemon task definitions: RegisterDaemonTaskDefinition,
//! DescribeDaemonTaskDefinition, ListDaemonTaskDefinitions,
//! DeleteDaemonTaskDefinition.
//!
//! A daemon container definition is a subset of a task definition's, so a
//! registration is checked by the task definition rules
//! (`berth_core::task_definition`) as an EC2 definition, and the revision
//! a daemon launches is stored beside the daemon view, already built.

use super::super::Ecs;
use crate::records::{self, kind, load, retry, scope, Attempt, Record, Versioned};
use berth_core::pagination::page_size;
use berth_core::task_definition::{self as td, Registration};
use berth_core::{arn, names, tags, EcsError};
use berth_store::Query;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use serde::{Deserialize, Serialize};

/// One revision: as DescribeDaemonTaskDefinition shows it, and as a task
/// definition for the launch path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonTaskDefinitionDoc {
    pub definition: DaemonTaskDefinition,
    pub launchable: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl DaemonTaskDefinitionDoc {
    fn family(&self) -> &str {
        self.definition.family.as_deref().unwrap_or_default()
    }
    fn revision(&self) -> i32 {
        self.definition.revision.unwrap_or_default()
    }
    pub fn arn(&self) -> String {
        self.definition
            .daemon_task_definition_arn
            .clone()
            .unwrap_or_default()
    }
    pub fn is_active(&self) -> bool {
        self.definition.status == Some(DaemonTaskDefinitionStatus::Active)
    }
}

impl Record for DaemonTaskDefinitionDoc {
    const KIND: &'static str = kind::DAEMON_TASK_DEFINITION;
    fn id(&self) -> String {
        format!("{}:{}", self.family(), self.revision())
    }
    /// By family, then revision (a tab sorts below any family character).
    fn sort(&self) -> String {
        format!("{}\t{:010}", self.family(), self.revision())
    }
    fn parent(&self) -> String {
        self.family().to_string()
    }
    fn status(&self) -> String {
        self.definition
            .status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    }
}

/// A family's newest revision number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonFamilyDoc {
    pub family: String,
    pub latest_revision: i32,
}

impl Record for DaemonFamilyDoc {
    const KIND: &'static str = kind::DAEMON_TASK_DEFINITION_FAMILY;
    fn id(&self) -> String {
        self.family.clone()
    }
}

/// The same members under a task definition's shape (a daemon's are a
/// subset of them).
fn recast<A: Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Result<B, EcsError> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| EcsError::Server(format!("daemon task definition: {e}")))
}

/// The task definition registration a daemon registration amounts to:
/// EC2 capacity (berth's agents), never FARGATE.
pub fn as_registration(
    input: &RegisterDaemonTaskDefinitionRequest,
) -> Result<RegisterTaskDefinitionRequest, EcsError> {
    Ok(RegisterTaskDefinitionRequest {
        family: input.family.clone(),
        task_role_arn: input.task_role_arn.clone(),
        execution_role_arn: input.execution_role_arn.clone(),
        container_definitions: recast(&input.container_definitions)?,
        volumes: input.volumes.as_ref().map(recast).transpose()?,
        cpu: input.cpu.clone(),
        memory: input.memory.clone(),
        requires_compatibilities: Some(vec![Compatibility::Ec2]),
        ..Default::default()
    })
}

/// A `daemonTaskDefinition` parameter: `family`, `family:revision` or an
/// ARN of the caller's account and region.
enum Reference {
    Family(String),
    Revision(String, i32),
}

fn parse_reference(ctx: &RequestContext, s: &str) -> Result<Reference, EcsError> {
    let body = if arn::looks_like_arn(s) {
        let a = arn::Arn::parse(s).ok_or_else(|| {
            EcsError::invalid(format!("Invalid daemon task definition ARN '{s}'."))
        })?;
        match a.resource_type_and_id() {
            ("daemon-task-definition", rest) if a.service == "ecs" => {
                if a.account != ctx.account_id || a.region != ctx.region {
                    return Err(not_found());
                }
                rest.to_string()
            }
            _ => {
                return Err(EcsError::invalid(format!(
                    "'{s}' is not a daemon task definition ARN."
                )))
            }
        }
    } else {
        s.to_string()
    };
    match body.rsplit_once(':') {
        Some((family, rev)) => {
            let rev: i32 = rev.parse().ok().filter(|r| *r >= 1).ok_or_else(|| {
                EcsError::client(format!("Invalid revision number. Number: {rev}"))
            })?;
            Ok(Reference::Revision(family.to_string(), rev))
        }
        None => Ok(Reference::Family(body)),
    }
}

fn not_found() -> EcsError {
    EcsError::client("The specified daemon task definition does not exist.")
}

/// Resolves a reference: a bare family is its newest ACTIVE revision; an
/// explicit revision is found in any status.
pub async fn resolve(
    ecs: &Ecs,
    ctx: &RequestContext,
    reference: &str,
) -> Result<Option<DaemonTaskDefinitionDoc>, EcsError> {
    Ok(match parse_reference(ctx, reference)? {
        Reference::Family(f) => {
            let q = Query {
                parent: Some(f),
                status: Some(DaemonTaskDefinitionStatus::Active.as_str().into()),
                descending: true,
                limit: 1,
                ..Default::default()
            };
            records::list::<DaemonTaskDefinitionDoc>(ecs.store(), &scope(ctx), &q)
                .await?
                .pop()
                .map(|d| d.value)
        }
        Reference::Revision(f, r) => {
            load::<DaemonTaskDefinitionDoc>(ecs.store(), &scope(ctx), &format!("{f}:{r}"))
                .await?
                .map(|d| d.value)
        }
    })
}

pub async fn register(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: RegisterDaemonTaskDefinitionRequest,
) -> Result<RegisterDaemonTaskDefinitionResponse, EcsError> {
    let registration = as_registration(&input)?;
    td::validate(&registration)?;
    let doc_tags = tags::initial(input.tags.as_ref())?;
    let sc = scope(ctx);
    let _serialized = ecs
        .lock(ctx, kind::DAEMON_TASK_DEFINITION_FAMILY, &input.family)
        .await;
    let doc = retry(ecs.store(), async || {
        let mut family = load::<DaemonFamilyDoc>(ecs.store(), &sc, &input.family)
            .await?
            .unwrap_or_else(|| {
                Versioned::new(DaemonFamilyDoc {
                    family: input.family.clone(),
                    latest_revision: 0,
                })
            });
        family.value.latest_revision += 1;
        let revision = family.value.latest_revision;
        let now = ecs.now();
        let reg = Registration {
            region: &ctx.region,
            account: &ctx.account_id,
            revision,
            registered_by: &ctx.principal_arn,
            now,
        };
        let arn =
            arn::daemon_task_definition(&ctx.region, &ctx.account_id, &input.family, revision);
        let mut launchable = td::build(registration.clone(), &reg);
        launchable.task_definition_arn = Some(arn.clone());
        let definition = DaemonTaskDefinition {
            daemon_task_definition_arn: Some(arn),
            family: Some(input.family.clone()),
            revision: Some(revision),
            task_role_arn: input.task_role_arn.clone(),
            execution_role_arn: input.execution_role_arn.clone(),
            container_definitions: Some(input.container_definitions.clone()),
            volumes: input.volumes.clone(),
            cpu: input.cpu.clone(),
            memory: input.memory.clone(),
            status: Some(DaemonTaskDefinitionStatus::Active),
            registered_at: Some(now),
            delete_requested_at: None,
            registered_by: Some(ctx.principal_arn.clone()),
        };
        let doc = Versioned::new(DaemonTaskDefinitionDoc {
            definition,
            launchable,
            tags: doc_tags.clone(),
        });
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![family.write(), doc.write()],
            value: doc.value,
        })
    })
    .await?;
    Ok(RegisterDaemonTaskDefinitionResponse {
        daemon_task_definition_arn: Some(doc.arn()),
    })
}

/// A deletion finishes once no daemon runs the revision any more: its
/// status is read as DELETED from then on.
async fn settle(
    ecs: &Ecs,
    ctx: &RequestContext,
    mut doc: DaemonTaskDefinitionDoc,
) -> Result<DaemonTaskDefinitionDoc, EcsError> {
    let deleting = Some(DaemonTaskDefinitionStatus::DeleteInProgress);
    if doc.definition.status == deleting && !super::uses_definition(ecs, ctx, &doc.arn()).await? {
        doc.definition.status = Some(DaemonTaskDefinitionStatus::Deleted);
    }
    Ok(doc)
}

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeDaemonTaskDefinitionRequest,
) -> Result<DescribeDaemonTaskDefinitionResponse, EcsError> {
    let doc = resolve(ecs, ctx, &input.daemon_task_definition)
        .await?
        .ok_or_else(not_found)?;
    let doc = settle(ecs, ctx, doc).await?;
    Ok(DescribeDaemonTaskDefinitionResponse {
        daemon_task_definition: Some(doc.definition),
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListDaemonTaskDefinitionsRequest,
) -> Result<ListDaemonTaskDefinitionsResponse, EcsError> {
    let limit = page_size(input.max_results, 100, 100)?;
    let status = input
        .status
        .clone()
        .unwrap_or(DaemonTaskDefinitionStatusFilter::Active);
    if !status.is_known() {
        return Err(EcsError::invalid(format!("Invalid status '{status}'.")));
    }
    let sort = input.sort.clone().unwrap_or(SortOrder::Asc);
    if !sort.is_known() {
        return Err(EcsError::invalid(format!("Invalid sort order '{sort}'.")));
    }
    if let Some(r) = input.revision.as_ref().filter(|r| !r.is_known()) {
        return Err(EcsError::invalid(format!("Invalid revision '{r}'.")));
    }
    if input.family.is_some() && input.family_prefix.is_some() {
        return Err(EcsError::invalid(
            "family and familyPrefix can not both be specified.",
        ));
    }
    let last_only = input.revision.is_some();
    let filter = format!(
        "{:?}|{:?}|{status}|{sort}|{last_only}",
        input.family, input.family_prefix
    );
    let pager = ecs.pager(ctx, "ListDaemonTaskDefinitions", &filter, limit);
    let mut after = pager.start(input.next_token.as_deref())?;
    let status = match status {
        DaemonTaskDefinitionStatusFilter::All => None,
        s => Some(s.as_str().to_string()),
    };
    let keep = |d: &DaemonTaskDefinitionDoc| {
        input
            .family_prefix
            .as_ref()
            .is_none_or(|p| d.family().starts_with(p.as_str()))
    };
    let mut found: Vec<DaemonTaskDefinitionDoc> = Vec::new();
    loop {
        let q = Query {
            parent: input.family.clone(),
            status: status.clone(),
            sort_prefix: input.family_prefix.clone(),
            after: after.clone(),
            descending: sort == SortOrder::Desc,
            limit: 500,
        };
        let batch = records::list::<DaemonTaskDefinitionDoc>(ecs.store(), &scope(ctx), &q).await?;
        let exhausted = batch.len() < 500;
        for d in batch {
            after = Some(d.value.sort());
            if !keep(&d.value) {
                continue;
            }
            let d = Versioned {
                value: settle(ecs, ctx, d.value).await?,
                version: d.version,
            };
            // One whose deletion has finished is no longer DELETE_IN_PROGRESS.
            if status.is_some() && Some(d.value.status()) != status {
                continue;
            }
            // LAST_REGISTERED: one revision per family, the newest.
            if last_only {
                let newer = |a: &DaemonTaskDefinitionDoc| a.revision() > d.value.revision();
                match found.iter().position(|f| f.family() == d.value.family()) {
                    Some(i) if newer(&found[i]) => continue,
                    Some(i) => {
                        found.remove(i);
                    }
                    None => {}
                }
            }
            found.push(d.value);
        }
        if exhausted || (!last_only && found.len() > limit) {
            break;
        }
    }
    let next_token = pager.finish(&mut found, |d| d.sort());
    Ok(ListDaemonTaskDefinitionsResponse {
        daemon_task_definitions: Some(
            found
                .into_iter()
                .map(|d| DaemonTaskDefinitionSummary {
                    arn: d.definition.daemon_task_definition_arn,
                    registered_at: d.definition.registered_at,
                    registered_by: d.definition.registered_by,
                    delete_requested_at: d.definition.delete_requested_at,
                    status: d.definition.status,
                })
                .collect(),
        ),
        next_token,
    })
}

/// ACTIVE → DELETED when no daemon runs it, else DELETE_IN_PROGRESS (the
/// daemons that run it keep running it, as on ECS).
pub async fn delete(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteDaemonTaskDefinitionRequest,
) -> Result<DeleteDaemonTaskDefinitionResponse, EcsError> {
    let (family, revision) = match parse_reference(ctx, &input.daemon_task_definition)? {
        Reference::Revision(f, r) if names::is_valid_name(&f) => (f, r),
        _ => {
            return Err(EcsError::client(format!(
                "Invalid daemon task definition '{}': specify a family and revision (family:revision) or a full ARN.",
                input.daemon_task_definition
            )))
        }
    };
    let sc = scope(ctx);
    let id = format!("{family}:{revision}");
    let _serialized = ecs
        .lock(ctx, kind::DAEMON_TASK_DEFINITION_FAMILY, &family)
        .await;
    let doc = retry(ecs.store(), async || {
        let mut doc = load::<DaemonTaskDefinitionDoc>(ecs.store(), &sc, &id)
            .await?
            .ok_or_else(not_found)?;
        if !doc.value.is_active() {
            return Err(EcsError::client(
                "The specified daemon task definition is not in ACTIVE status.",
            ));
        }
        let in_use = super::uses_definition(ecs, ctx, &doc.value.arn()).await?;
        let d = &mut doc.value.definition;
        d.status = Some(if in_use {
            DaemonTaskDefinitionStatus::DeleteInProgress
        } else {
            DaemonTaskDefinitionStatus::Deleted
        });
        d.delete_requested_at = Some(ecs.now());
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![doc.write()],
            value: doc.value,
        })
    })
    .await?;
    Ok(DeleteDaemonTaskDefinitionResponse {
        daemon_task_definition_arn: Some(doc.arn()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_registration_is_an_ec2_registration_with_the_same_members() {
        let input = RegisterDaemonTaskDefinitionRequest {
            family: "agent".into(),
            container_definitions: vec![DaemonContainerDefinition {
                name: Some("main".into()),
                image: "busybox".into(),
                memory: Some(64),
                command: Some(vec!["sleep".into(), "1".into()]),
                linux_parameters: Some(DaemonLinuxParameters {
                    init_process_enabled: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            volumes: Some(vec![DaemonVolume {
                name: Some("logs".into()),
                host: Some(HostVolumeProperties {
                    source_path: Some("/var/log".into()),
                }),
            }]),
            memory: Some("128".into()),
            ..Default::default()
        };
        let r = as_registration(&input).unwrap();
        assert_eq!(r.requires_compatibilities, Some(vec![Compatibility::Ec2]));
        let c = &r.container_definitions[0];
        assert_eq!(c.image.as_deref(), Some("busybox"));
        assert_eq!(c.memory, Some(64));
        assert_eq!(c.command.as_deref().map(<[String]>::len), Some(2));
        assert_eq!(
            c.linux_parameters
                .as_ref()
                .and_then(|l| l.init_process_enabled),
            Some(true)
        );
        let v = &r.volumes.as_ref().unwrap()[0];
        assert_eq!(
            v.host.as_ref().and_then(|h| h.source_path.as_deref()),
            Some("/var/log")
        );
        td::validate(&r).unwrap();
    }
}
