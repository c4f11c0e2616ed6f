//! Task definitions: RegisterTaskDefinition, DescribeTaskDefinition,
//! ListTaskDefinitions, ListTaskDefinitionFamilies,
//! DeregisterTaskDefinition, DeleteTaskDefinitions.

use super::Ecs;
use crate::records::{self, kind, load, retry, scope, Attempt, Record, Versioned};
use berth_core::pagination::page_size;
use berth_core::task_definition::{self as td, Registration};
use berth_core::{arn, names, tags, EcsError};
use berth_store::Query;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use serde::{Deserialize, Serialize};

/// One revision, with its tags (ECS tags revisions, not families).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDefinitionDoc {
    #[serde(rename = "taskDefinition")]
    pub task_definition: TaskDefinition,
    #[serde(rename = "tags", default)]
    pub tags: Vec<Tag>,
}

fn sort_key(family: &str, revision: i32) -> String {
    // A tab sorts below every character a family may contain, so keys order
    // by family first and then by revision, as ListTaskDefinitions does.
    format!("{family}\t{revision:010}")
}

impl TaskDefinitionDoc {
    fn family(&self) -> &str {
        self.task_definition.family.as_deref().unwrap_or_default()
    }
    fn revision(&self) -> i32 {
        self.task_definition.revision.unwrap_or_default()
    }
    fn status(&self) -> Option<&TaskDefinitionStatus> {
        self.task_definition.status.as_ref()
    }
}

impl Record for TaskDefinitionDoc {
    const KIND: &'static str = kind::TASK_DEFINITION;
    fn id(&self) -> String {
        format!("{}:{}", self.family(), self.revision())
    }
    fn sort(&self) -> String {
        sort_key(self.family(), self.revision())
    }
    fn parent(&self) -> String {
        self.family().to_string()
    }
    fn status(&self) -> String {
        self.status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    }
}

/// A family: its newest revision number and how many revisions are ACTIVE.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FamilyDoc {
    pub family: String,
    pub latest_revision: i32,
    pub active_revisions: u32,
}

impl Record for FamilyDoc {
    const KIND: &'static str = kind::TASK_DEFINITION_FAMILY;
    fn id(&self) -> String {
        self.family.clone()
    }
    fn status(&self) -> String {
        if self.active_revisions > 0 {
            "ACTIVE"
        } else {
            "INACTIVE"
        }
        .into()
    }
}

/// What a `taskDefinition` parameter names: a family alone, or one revision.
enum Reference {
    Family(String),
    Revision(String, i32),
}

fn parse_reference(ctx: &RequestContext, s: &str) -> Result<Reference, EcsError> {
    let unable = || EcsError::client("Unable to describe task definition.");
    let body = if arn::looks_like_arn(s) {
        let a = arn::Arn::parse(s)
            .ok_or_else(|| EcsError::invalid(format!("Invalid task definition ARN '{s}'.")))?;
        match a.resource_type_and_id() {
            ("task-definition", rest) if a.service == "ecs" => {
                if a.account != ctx.account_id || a.region != ctx.region {
                    return Err(unable());
                }
                rest.to_string()
            }
            _ => {
                return Err(EcsError::invalid(format!(
                    "'{s}' is not a task definition ARN."
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

async fn latest_active(
    ecs: &Ecs,
    ctx: &RequestContext,
    family: &str,
) -> Result<Option<Versioned<TaskDefinitionDoc>>, EcsError> {
    let q = Query {
        parent: Some(family.to_string()),
        status: Some("ACTIVE".into()),
        descending: true,
        limit: 1,
        ..Default::default()
    };
    Ok(
        records::list::<TaskDefinitionDoc>(ecs.store(), &scope(ctx), &q)
            .await?
            .pop(),
    )
}

/// Resolves a `taskDefinition` parameter: a bare family means its newest
/// ACTIVE revision; an explicit revision is found in any status.
pub async fn resolve(
    ecs: &Ecs,
    ctx: &RequestContext,
    reference: &str,
) -> Result<Option<Versioned<TaskDefinitionDoc>>, EcsError> {
    match parse_reference(ctx, reference)? {
        Reference::Family(f) => latest_active(ecs, ctx, &f).await,
        Reference::Revision(f, r) => load(ecs.store(), &scope(ctx), &format!("{f}:{r}")).await,
    }
}

pub async fn register(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: RegisterTaskDefinitionRequest,
) -> Result<RegisterTaskDefinitionResponse, EcsError> {
    td::validate(&input)?;
    let doc_tags = tags::initial(input.tags.as_ref())?;
    let sc = scope(ctx);
    let _serialized = ecs
        .lock(ctx, kind::TASK_DEFINITION_FAMILY, &input.family)
        .await;
    let doc = retry(ecs.store(), async || {
        let mut family = load::<FamilyDoc>(ecs.store(), &sc, &input.family)
            .await?
            .unwrap_or_else(|| {
                Versioned::new(FamilyDoc {
                    family: input.family.clone(),
                    latest_revision: 0,
                    active_revisions: 0,
                })
            });
        family.value.latest_revision += 1;
        family.value.active_revisions += 1;
        let reg = Registration {
            region: &ctx.region,
            account: &ctx.account_id,
            revision: family.value.latest_revision,
            registered_by: &ctx.principal_arn,
            now: ecs.now(),
        };
        let doc = Versioned::new(TaskDefinitionDoc {
            task_definition: td::build(input.clone(), &reg),
            tags: doc_tags.clone(),
        });
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![family.write(), doc.write()],
            value: doc.value,
        })
    })
    .await?;
    let tags = (!doc.tags.is_empty()).then(|| doc.tags.clone());
    Ok(RegisterTaskDefinitionResponse {
        task_definition: Some(doc.task_definition),
        tags,
    })
}

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeTaskDefinitionRequest,
) -> Result<DescribeTaskDefinitionResponse, EcsError> {
    let include = input.include.unwrap_or_default();
    if let Some(bad) = include.iter().find(|f| !f.is_known()) {
        return Err(EcsError::invalid(format!("Invalid include field '{bad}'.")));
    }
    let doc = resolve(ecs, ctx, &input.task_definition)
        .await?
        .ok_or_else(|| EcsError::client("Unable to describe task definition."))?;
    let tags = include
        .contains(&TaskDefinitionField::Tags)
        .then(|| doc.value.tags.clone());
    Ok(DescribeTaskDefinitionResponse {
        task_definition: Some(doc.value.task_definition),
        tags,
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListTaskDefinitionsRequest,
) -> Result<ListTaskDefinitionsResponse, EcsError> {
    let limit = page_size(input.max_results, 100, 100)?;
    let status = input.status.unwrap_or(TaskDefinitionStatus::Active);
    if !status.is_known() {
        return Err(EcsError::invalid(format!("Invalid status '{status}'.")));
    }
    let sort = input.sort.unwrap_or(SortOrder::Asc);
    if !sort.is_known() {
        return Err(EcsError::invalid(format!("Invalid sort order '{sort}'.")));
    }
    let filter = format!("{:?}|{status}|{sort}", input.family_prefix);
    let pager = ecs.pager(ctx, "ListTaskDefinitions", &filter, limit);
    let after = pager.start(input.next_token.as_deref())?;
    // `familyPrefix` is, despite its name, an exact family match in ECS.
    let q = Query {
        parent: input.family_prefix.clone(),
        status: Some(status.as_str().to_string()),
        after,
        descending: sort == SortOrder::Desc,
        limit: limit + 1,
        ..Default::default()
    };
    let mut docs = records::list::<TaskDefinitionDoc>(ecs.store(), &scope(ctx), &q).await?;
    let next_token = pager.finish(&mut docs, |d| d.value.sort());
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns: Some(
            docs.into_iter()
                .filter_map(|d| d.value.task_definition.task_definition_arn)
                .collect(),
        ),
        next_token,
    })
}

pub async fn list_families(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListTaskDefinitionFamiliesRequest,
) -> Result<ListTaskDefinitionFamiliesResponse, EcsError> {
    let limit = page_size(input.max_results, 100, 100)?;
    // ECS lists ACTIVE and INACTIVE families unless told otherwise.
    let status = input.status.unwrap_or(TaskDefinitionFamilyStatus::All);
    let filter = format!("{:?}|{status}", input.family_prefix);
    let status = match status {
        TaskDefinitionFamilyStatus::All => None,
        TaskDefinitionFamilyStatus::Unknown(s) => {
            return Err(EcsError::invalid(format!("Invalid status '{s}'.")))
        }
        s => Some(s.as_str().to_string()),
    };
    let pager = ecs.pager(ctx, "ListTaskDefinitionFamilies", &filter, limit);
    let q = Query {
        status,
        sort_prefix: input.family_prefix.clone(),
        after: pager.start(input.next_token.as_deref())?,
        limit: limit + 1,
        ..Default::default()
    };
    let mut docs = records::list::<FamilyDoc>(ecs.store(), &scope(ctx), &q).await?;
    let next_token = pager.finish(&mut docs, |d| d.value.family.clone());
    Ok(ListTaskDefinitionFamiliesResponse {
        families: Some(docs.into_iter().map(|d| d.value.family).collect()),
        next_token,
    })
}

fn revision_reference(ctx: &RequestContext, s: &str) -> Result<(String, i32), EcsError> {
    match parse_reference(ctx, s)? {
        Reference::Revision(f, r) if names::is_valid_name(&f) => Ok((f, r)),
        _ => Err(EcsError::client(format!(
            "Invalid task definition '{s}': specify a family and revision (family:revision) or a full ARN."
        ))),
    }
}

pub async fn deregister(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeregisterTaskDefinitionRequest,
) -> Result<DeregisterTaskDefinitionResponse, EcsError> {
    let (family, revision) = revision_reference(ctx, &input.task_definition)?;
    let sc = scope(ctx);
    let _serialized = ecs.lock(ctx, kind::TASK_DEFINITION_FAMILY, &family).await;
    let deregistered = retry(ecs.store(), async || {
        let mut doc = load::<TaskDefinitionDoc>(ecs.store(), &sc, &format!("{family}:{revision}"))
            .await?
            .ok_or_else(|| EcsError::client("The specified task definition does not exist."))?;
        if doc.value.status() != Some(&TaskDefinitionStatus::Active) {
            // Already deregistered: ECS answers with the definition as it is.
            return Ok(Attempt::Done(doc.value.task_definition));
        }
        let mut fam = load::<FamilyDoc>(ecs.store(), &sc, &family)
            .await?
            .ok_or_else(|| EcsError::Server("family record missing".into()))?;
        fam.value.active_revisions = fam.value.active_revisions.saturating_sub(1);
        doc.value.task_definition.status = Some(TaskDefinitionStatus::Inactive);
        doc.value.task_definition.deregistered_at = Some(ecs.now());
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![fam.write(), doc.write()],
            value: doc.value.task_definition,
        })
    })
    .await?;
    Ok(DeregisterTaskDefinitionResponse {
        task_definition: Some(deregistered),
    })
}

pub async fn delete(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, EcsError> {
    if input.task_definitions.is_empty() || input.task_definitions.len() > 10 {
        return Err(EcsError::invalid(
            "Between 1 and 10 task definitions can be deleted at a time.",
        ));
    }
    let sc = scope(ctx);
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for reference in &input.task_definitions {
        let Ok((family, revision)) = revision_reference(ctx, reference) else {
            failures.push(Failure {
                arn: Some(reference.clone()),
                reason: Some("The specified task definition identifier is invalid. Specify a family and revision or a full ARN.".into()),
                detail: None,
            });
            continue;
        };
        // Failures name the revision by its full ARN, as ECS does.
        let full_arn = arn::task_definition(&ctx.region, &ctx.account_id, &family, revision);
        let fail = |reason: &str| Failure {
            arn: Some(full_arn.clone()),
            reason: Some(reason.into()),
            detail: None,
        };
        // The revision marked for deletion, or why it cannot be.
        let outcome = retry(ecs.store(), async || {
            let Some(mut doc) =
                load::<TaskDefinitionDoc>(ecs.store(), &sc, &format!("{family}:{revision}"))
                    .await?
            else {
                return Ok(Attempt::Done(Err(
                    "The specified task definition does not exist.",
                )));
            };
            match doc.value.status() {
                Some(TaskDefinitionStatus::Inactive) => {}
                Some(TaskDefinitionStatus::DeleteInProgress) => {
                    return Ok(Attempt::Done(Ok(doc.value.task_definition)));
                }
                _ => {
                    return Ok(Attempt::Done(Err("The specified task definition is still in ACTIVE status. Deregister it before deleting.")));
                }
            }
            doc.value.task_definition.status = Some(TaskDefinitionStatus::DeleteInProgress);
            doc.value.task_definition.delete_requested_at = Some(ecs.now());
            Ok::<_, EcsError>(Attempt::Commit {
                scope: sc.clone(),
                writes: vec![doc.write()],
                value: Ok(doc.value.task_definition),
            })
        })
        .await?;
        match outcome {
            Ok(td) => deleted.push(td),
            Err(reason) => failures.push(fail(reason)),
        }
    }
    Ok(DeleteTaskDefinitionsResponse {
        task_definitions: Some(deleted),
        failures: Some(failures),
    })
}

/// Loads one revision for tagging, by `family:revision`.
pub async fn load_revision(
    ecs: &Ecs,
    ctx: &RequestContext,
    family: &str,
    revision: i32,
) -> Result<Option<Versioned<TaskDefinitionDoc>>, EcsError> {
    load(ecs.store(), &scope(ctx), &format!("{family}:{revision}")).await
}
