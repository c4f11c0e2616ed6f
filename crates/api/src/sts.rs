//! STS: GetCallerIdentity reports who the request's context says is
//! calling (the key's principal, or an assumed role's session).

use berth_wire::sts::*;
use berth_wire::{ApiError, RequestContext};

/// The STS API. It keeps nothing: the caller is in the request's context.
#[derive(Clone, Copy, Default)]
pub struct Sts;

#[async_trait::async_trait]
impl StsApi for Sts {
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

/// AWS's `UserId`: the account for its root, `ROLEID:session` for an
/// assumed role, else the key (berth has no IAM user IDs).
fn user_id(ctx: &RequestContext) -> String {
    let arn = &ctx.principal_arn;
    if arn.ends_with(":root") {
        return ctx.account_id.clone();
    }
    if let Some(rest) = arn.split(":assumed-role/").nth(1) {
        if let Some((role, session)) = rest.split_once('/') {
            let role_id = crate::ec2::network::derived_id("AROA", &[&ctx.account_id, role]);
            let role_id = role_id.replace('-', "").to_ascii_uppercase();
            return format!("{role_id}:{session}");
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
        let out = Sts
            .get_caller_identity(&ctx, GetCallerIdentityRequest::default())
            .await
            .unwrap();
        assert_eq!(out.account.as_deref(), Some("111111111111"));
        assert_eq!(out.arn.as_deref(), Some("arn:aws:iam::111111111111:root"));
        assert_eq!(out.user_id.as_deref(), Some("111111111111"));
        ctx.principal_arn = "arn:aws:sts::111111111111:assumed-role/app/task-1".into();
        let out = Sts
            .get_caller_identity(&ctx, GetCallerIdentityRequest::default())
            .await
            .unwrap();
        assert!(out.user_id.unwrap().ends_with(":task-1"));
    }
}
