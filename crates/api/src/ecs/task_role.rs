//! Task roles: temporary credentials for a task's `taskRoleArn`, issued to
//! the agent the task is assigned to (`BerthAgentV1.GetTaskCredentials`),
//! which serves them to the task's containers. They are sealed session
//! tokens (`berth_auth::session`): the server verifies them statelessly,
//! and refuses them once their task has stopped ([`Ecs::task_is_live`]).

use super::tasks::{self, TaskDoc};
use super::Ecs;
use crate::records::load;
use berth_auth::SessionKey;
use berth_core::arn::Arn;
use berth_core::task::{TaskStatus, TaskStatuses};
use berth_core::EcsError;
use berth_store::Scope;
use berth_wire::agent::{GetTaskCredentialsRequest, GetTaskCredentialsResponse};
use berth_wire::RequestContext;
use std::sync::Arc;

/// How long issued credentials live. The agent asks again when less than
/// half is left, and SDKs refresh 15 minutes before the end.
pub const CREDENTIALS_LIFETIME_SECS: i64 = 3600;

impl Ecs {
    /// Issues task-role credentials sealed under `key`.
    pub fn with_sessions(mut self, key: Arc<SessionKey>) -> Self {
        self.sessions = Some(key);
        self
    }

    /// `BerthAgentV1.GetTaskCredentials` from an agent authenticated as
    /// `ctx`: only for a task of its own account and region, assigned to
    /// the container instance it names.
    pub async fn get_task_credentials(
        &self,
        ctx: &RequestContext,
        req: GetTaskCredentialsRequest,
    ) -> Result<GetTaskCredentialsResponse, berth_wire::ApiError> {
        let task = Arn::parse(&req.task).filter(|a| a.service == "ecs");
        if task
            .as_ref()
            .is_none_or(|a| a.account != ctx.account_id || a.region != ctx.region)
        {
            return Err(not_assigned(&req.task).into());
        }
        let scope = Scope::new(&ctx.account_id, &ctx.region);
        Ok(self
            .task_credentials(&scope, &req.container_instance_arn, &req.task)
            .await?)
    }

    /// Credentials for `task_arn`'s role, when the task is assigned to the
    /// instance `instance` (ARN or id) of `instance_scope` and has not
    /// stopped. The embedded agent calls this with berth's managed scope.
    pub async fn task_credentials(
        &self,
        instance_scope: &Scope,
        instance: &str,
        task_arn: &str,
    ) -> Result<GetTaskCredentialsResponse, EcsError> {
        let Some(key) = &self.sessions else {
            return Err(EcsError::client("This server issues no task credentials."));
        };
        let doc = self
            .live_task(task_arn)
            .await?
            .ok_or_else(|| not_assigned(task_arn))?;
        let instance_id = instance.rsplit('/').next().unwrap_or(instance);
        let task_scope = (doc.1.account.clone(), doc.1.region.clone());
        let on_instance = doc.0.instance_id.as_deref() == Some(instance_id)
            && doc.0.instance_scope.clone().unwrap_or(task_scope)
                == (
                    instance_scope.account.clone(),
                    instance_scope.region.clone(),
                );
        if !on_instance {
            return Err(not_assigned(task_arn));
        }
        let role_arn = task_role(&doc.0, &doc.1.account).ok_or_else(|| {
            EcsError::invalid(format!(
                "The task {task_arn} has no task role of its account."
            ))
        })?;
        let expires = self.now().0 as i64 + CREDENTIALS_LIFETIME_SECS;
        let c = key.issue(
            &doc.1.account,
            &role_arn,
            berth_auth::SessionFor::Task(task_arn),
            expires,
        );
        Ok(GetTaskCredentialsResponse {
            role_arn,
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            expiration: c.expires,
        })
    }

    /// Whether the task credentials of `task_arn` still work: the task
    /// exists and has not stopped.
    pub async fn task_is_live(&self, task_arn: &str) -> Result<bool, berth_wire::ApiError> {
        Ok(self.live_task(task_arn).await?.is_some())
    }

    async fn live_task(&self, task_arn: &str) -> Result<Option<(TaskDoc, Scope)>, EcsError> {
        let Some(arn) = Arn::parse(task_arn).filter(|a| a.service == "ecs") else {
            return Ok(None);
        };
        let scope = Scope::new(&arn.account, &arn.region);
        let id = arn.resource.rsplit('/').next().unwrap_or_default();
        let Some(doc) = load::<TaskDoc>(self.store(), &scope, id).await? else {
            return Ok(None);
        };
        let view = tasks::view(&doc.value, false);
        if view.task_arn.as_deref() != Some(task_arn) || view.status() == TaskStatus::Stopped {
            return Ok(None);
        }
        Ok(Some((doc.value, scope)))
    }
}

fn not_assigned(task_arn: &str) -> EcsError {
    EcsError::invalid(format!(
        "The task {task_arn} is not assigned to this container instance."
    ))
}

/// The role the task assumes: its override, else its revision's, as a
/// full ARN in the task's own account (a role of another account is never
/// assumed: nothing in berth lets one account trust another).
pub fn task_role(doc: &TaskDoc, account: &str) -> Option<String> {
    let named = doc
        .task
        .overrides
        .as_ref()
        .and_then(|o| o.task_role_arn.clone())
        .or_else(|| doc.task_definition.task_role_arn.clone())
        .filter(|r| !r.is_empty())?;
    if !named.starts_with("arn:") {
        let name = named.strip_prefix("role/").unwrap_or(&named);
        return Some(format!("arn:aws:iam::{account}:role/{name}"));
    }
    let arn = Arn::parse(&named)?;
    (arn.service == "iam" && arn.account == account && arn.resource.starts_with("role/"))
        .then_some(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(td_role: Option<&str>, override_role: Option<&str>) -> TaskDoc {
        let task = serde_json::json!({
            "id": "t", "cluster": "c", "needs": {"cpu": 0, "memory": 0, "host_ports": []},
            "task": {"overrides": {"taskRoleArn": override_role}},
            "taskDefinition": {"taskRoleArn": td_role},
        });
        serde_json::from_value(task).expect("a task document")
    }

    #[test]
    fn the_task_role_is_of_the_tasks_account() {
        let acct = "111111111111";
        let own = "arn:aws:iam::111111111111:role/app";
        assert_eq!(task_role(&doc(Some(own), None), acct).as_deref(), Some(own));
        // The override wins; a short name is the account's role.
        assert_eq!(
            task_role(&doc(Some(own), Some("other")), acct).as_deref(),
            Some("arn:aws:iam::111111111111:role/other")
        );
        // Another account's role, a user, garbage: no role at all.
        for bad in [
            "arn:aws:iam::222222222222:role/app",
            "arn:aws:iam::111111111111:user/app",
            "arn:aws:s3:::bucket",
            "arn:",
        ] {
            assert_eq!(task_role(&doc(Some(bad), None), acct), None, "{bad}");
        }
        assert_eq!(task_role(&doc(None, None), acct), None);
    }
}
