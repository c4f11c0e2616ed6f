//! STS: GetCallerIdentity reports who the request's context says is
//! calling (the key's principal, or an assumed role's session);
//! AssumeRole issues temporary credentials for a role berth knows (one of
//! `[[roles]]`, in the caller's own account) as a sealed session token
//! (`berth_auth::session`), so it keeps nothing either.
//!
//! Whether the caller may assume the role (its key's policies must allow
//! `sts:AssumeRole` on it; temporary credentials may not) is the server's
//! authorization, before the call gets here.

use berth_auth::{SessionFor, SessionKey};
use berth_wire::sts::*;
use berth_wire::{ApiError, RequestContext, Timestamp};
use std::collections::BTreeSet;
use std::sync::Arc;

/// `DurationSeconds`' bounds and default, as STS's (berth's roles all
/// allow the longest session).
const MIN_DURATION: i32 = 900;
const MAX_DURATION: i32 = 43_200;
const DEFAULT_DURATION: i32 = 3600;

/// The STS API.
#[derive(Clone, Default)]
pub struct Sts {
    /// Seals AssumeRole's sessions; without it AssumeRole is refused.
    sessions: Option<Arc<SessionKey>>,
    /// The ARNs of the roles that may be assumed (`[[roles]]`).
    roles: Arc<BTreeSet<String>>,
}

impl Sts {
    /// Issues AssumeRole credentials for `roles`, sealed under `key`.
    pub fn new(key: Arc<SessionKey>, roles: impl IntoIterator<Item = String>) -> Self {
        Sts {
            sessions: Some(key),
            roles: Arc::new(roles.into_iter().collect()),
        }
    }
}

#[async_trait::async_trait]
impl StsApi for Sts {
    async fn assume_role(
        &self,
        ctx: &RequestContext,
        input: AssumeRoleRequest,
    ) -> Result<AssumeRoleResponse, ApiError> {
        let duration = input.duration_seconds.unwrap_or(DEFAULT_DURATION);
        check_request(&input.role_arn, &input.role_session_name, duration)?;
        if input.policy.is_some() || input.policy_arns.as_ref().is_some_and(|p| !p.is_empty()) {
            // Ignoring a session policy would grant more than was asked for.
            return Err(ApiError::client(
                "ValidationError",
                "berth does not support session policies (Policy, PolicyArns): \
assume the role without them; its [[roles]] policies apply.",
            ));
        }
        // Another account's role is refused as an unknown one: which roles
        // other accounts have is not the caller's to learn.
        let own = input
            .role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.strip_prefix(ctx.account_id.as_str()))
            .is_some_and(|rest| rest.starts_with(":role/"));
        let key = self
            .sessions
            .as_ref()
            .filter(|_| own && self.roles.contains(&input.role_arn));
        let Some(key) = key else {
            return Err(ApiError::new(
                "AccessDenied",
                403,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                    ctx.principal_arn, input.role_arn
                ),
            ));
        };
        let expires = now_secs() + i64::from(duration);
        let name = input.role_session_name.as_str();
        let c = key.issue(
            &ctx.account_id,
            &input.role_arn,
            SessionFor::Name(name),
            expires,
        );
        let role_name = input.role_arn.rsplit('/').next().unwrap_or_default();
        Ok(AssumeRoleResponse {
            credentials: Some(Credentials {
                access_key_id: c.access_key_id.clone(),
                secret_access_key: c.secret_access_key.clone(),
                session_token: c.session_token.clone(),
                expiration: Timestamp(expires as f64),
            }),
            assumed_role_user: Some(AssumedRoleUser {
                assumed_role_id: format!("{}:{name}", role_id(&ctx.account_id, role_name)),
                arn: format!(
                    "arn:aws:sts::{}:assumed-role/{role_name}/{name}",
                    ctx.account_id
                ),
            }),
            ..Default::default()
        })
    }

    async fn get_caller_identity(
        &self,
        ctx: &RequestContext,
        _input: GetCallerIdentityRequest,
    ) -> Result<GetCallerIdentityResponse, ApiError> {
        Ok(GetCallerIdentityResponse {
            user_id: Some(user_id(ctx)),
            account: Some(ctx.account_id.clone()),
            arn: Some(ctx.principal_arn.clone()),
        })
    }
}

/// STS's own constraints on AssumeRole's members, in its words.
fn check_request(role_arn: &str, session_name: &str, duration: i32) -> Result<(), ApiError> {
    let failed = |value: &str, member: &str, constraint: &str| {
        Err(ApiError::client(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{value}' at '{member}' failed to satisfy \
constraint: Member must {constraint}"
            ),
        ))
    };
    if role_arn.len() < 20 {
        return failed(
            role_arn,
            "roleArn",
            "have length greater than or equal to 20",
        );
    }
    if role_arn.len() > 2048 {
        return failed(
            role_arn,
            "roleArn",
            "have length less than or equal to 2048",
        );
    }
    if session_name.len() < 2 {
        return failed(
            session_name,
            "roleSessionName",
            "have length greater than or equal to 2",
        );
    }
    if session_name.len() > 64 {
        return failed(
            session_name,
            "roleSessionName",
            "have length less than or equal to 64",
        );
    }
    let name_ok = session_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !name_ok {
        return failed(
            session_name,
            "roleSessionName",
            "satisfy regular expression pattern: [\\w+=,.@-]*",
        );
    }
    if duration < MIN_DURATION {
        return failed(
            &duration.to_string(),
            "durationSeconds",
            "have value greater than or equal to 900",
        );
    }
    if duration > MAX_DURATION {
        return failed(
            &duration.to_string(),
            "durationSeconds",
            "have value less than or equal to 43200",
        );
    }
    Ok(())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A role's unique id (`AROA…`), stable for its account and name.
fn role_id(account_id: &str, role_name: &str) -> String {
    crate::ec2::network::derived_id("AROA", &[account_id, role_name])
        .replace('-', "")
        .to_ascii_uppercase()
}

/// AWS's `UserId`: the account for its root, `ROLEID:session` for an
/// assumed role, else the key (berth has no IAM user IDs).
fn user_id(ctx: &RequestContext) -> String {
    let arn = &ctx.principal_arn;
    if arn.ends_with(":root") {
        return ctx.account_id.clone();
    }
    if let Some(rest) = arn.split(":assumed-role/").nth(1) {
        if let Some((role, session)) = rest.split_once('/') {
            return format!("{}:{session}", role_id(&ctx.account_id, role));
        }
    }
    ctx.access_key_id.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_the_context() {
        let mut ctx = RequestContext::for_account("111111111111", "us-east-1");
        let out = Sts::default()
            .get_caller_identity(&ctx, GetCallerIdentityRequest::default())
            .await
            .unwrap();
        assert_eq!(out.account.as_deref(), Some("111111111111"));
        assert_eq!(out.arn.as_deref(), Some("arn:aws:iam::111111111111:root"));
        assert_eq!(out.user_id.as_deref(), Some("111111111111"));
        ctx.principal_arn = "arn:aws:sts::111111111111:assumed-role/app/task-1".into();
        let out = Sts::default()
            .get_caller_identity(&ctx, GetCallerIdentityRequest::default())
            .await
            .unwrap();
        assert!(out.user_id.unwrap().ends_with(":task-1"));
    }

    const ROLE: &str = "arn:aws:iam::111111111111:role/ci/deployer";

    fn sts() -> Sts {
        let key = Arc::new(SessionKey::new(&[5; 32]).unwrap());
        Sts::new(
            key,
            [
                ROLE.to_string(),
                "arn:aws:iam::222222222222:role/other".into(),
            ],
        )
    }

    fn request(role: &str, name: &str) -> AssumeRoleRequest {
        AssumeRoleRequest {
            role_arn: role.into(),
            role_session_name: name.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn assumes_a_known_role_of_the_callers_account() {
        let ctx = RequestContext::for_account("111111111111", "us-east-1");
        let out = sts()
            .assume_role(&ctx, request(ROLE, "run-7"))
            .await
            .unwrap();
        let user = out.assumed_role_user.unwrap();
        assert_eq!(
            user.arn,
            "arn:aws:sts::111111111111:assumed-role/deployer/run-7"
        );
        assert!(
            user.assumed_role_id.starts_with("AROA") && user.assumed_role_id.ends_with(":run-7")
        );
        let c = out.credentials.unwrap();
        assert!(c.access_key_id.starts_with("ASIA"));
        let left = c.expiration.0 as i64 - now_secs();
        assert!((3590..=3600).contains(&left), "{left}");
        // GetCallerIdentity's UserId for that session is the same id.
        let mut as_role = ctx.clone();
        as_role.principal_arn = user.arn;
        let who = sts()
            .get_caller_identity(&as_role, GetCallerIdentityRequest::default())
            .await
            .unwrap();
        assert_eq!(who.user_id.unwrap(), user.assumed_role_id);
    }

    #[tokio::test]
    async fn unknown_or_foreign_roles_are_access_denied() {
        let ctx = RequestContext::for_account("111111111111", "us-east-1");
        for role in [
            "arn:aws:iam::111111111111:role/nobody",
            "arn:aws:iam::222222222222:role/other",
            // Known in another account, named with this account's id elsewhere.
            "arn:aws:iam::111111111111:user/ci/deployer",
        ] {
            let e = sts()
                .assume_role(&ctx, request(role, "s1"))
                .await
                .unwrap_err();
            assert_eq!((e.code.as_ref(), e.status), ("AccessDenied", 403), "{role}");
            assert!(e
                .message
                .contains("sts:AssumeRole on resource: arn:aws:iam::"));
        }
        let e = Sts::default()
            .assume_role(&ctx, request(ROLE, "s1"))
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccessDenied");
    }

    #[tokio::test]
    async fn malformed_members_and_session_policies_are_validation_errors() {
        let ctx = RequestContext::for_account("111111111111", "us-east-1");
        let with = |f: &dyn Fn(&mut AssumeRoleRequest)| {
            let mut r = request(ROLE, "ok-name");
            f(&mut r);
            r
        };
        let bad = [
            with(&|r| r.role_session_name = "a".into()),
            with(&|r| r.role_session_name = "has space".into()),
            with(&|r| r.role_session_name = "x".repeat(65)),
            with(&|r| r.duration_seconds = Some(899)),
            with(&|r| r.duration_seconds = Some(43_201)),
            with(&|r| r.role_arn = "arn:short".into()),
            with(&|r| r.policy = Some("{}".into())),
        ];
        for r in bad {
            let e = sts().assume_role(&ctx, r.clone()).await.unwrap_err();
            assert_eq!(
                (e.code.as_ref(), e.status),
                ("ValidationError", 400),
                "{r:?}"
            );
        }
        let ok = with(&|r| r.duration_seconds = Some(43_200));
        assert!(sts().assume_role(&ctx, ok).await.is_ok());
    }
}
