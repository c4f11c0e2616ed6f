//! Account settings: PutAccountSetting, PutAccountSettingDefault,
//! DeleteAccountSetting, ListAccountSettings.
//!
//! A setting belongs to a principal. The account's root principal holds the
//! account default; a principal's own value overrides it; with neither,
//! ECS's default applies. That is the precedence `effectiveSettings` shows.

use super::Ecs;
use crate::records::{self, kind, load, scope, try_commit, Record};
use berth_core::account_settings as rules;
use berth_core::pagination::{page_size, PageKey};
use berth_core::{arn, EcsError};
use berth_store::{Expect, Query, Write};
use berth_wire::ecs::*;
use berth_wire::RequestContext;

impl Record for Setting {
    const KIND: &'static str = kind::ACCOUNT_SETTING;
    fn id(&self) -> String {
        setting_id(
            self.principal_arn.as_deref().unwrap_or_default(),
            self.name.as_ref(),
        )
    }
    fn parent(&self) -> String {
        self.principal_arn.clone().unwrap_or_default()
    }
}

fn setting_id(principal: &str, name: Option<&SettingName>) -> String {
    format!(
        "{principal}\t{}",
        name.map(|n| n.as_str()).unwrap_or_default()
    )
}

/// A principal ARN of the caller's account: root, a user or a role.
fn principal(ctx: &RequestContext, given: Option<&str>) -> Result<String, EcsError> {
    let Some(p) = given else {
        return Ok(ctx.principal_arn.clone());
    };
    let ok = arn::Arn::parse(p).is_some_and(|a| {
        a.service == "iam"
            && a.account == ctx.account_id
            && (a.resource == "root"
                || a.resource.starts_with("user/")
                || a.resource.starts_with("role/"))
    });
    if ok {
        Ok(p.to_string())
    } else {
        Err(EcsError::invalid(format!(
            "principalArn '{p}' must be the ARN of the root user, an IAM user or an IAM role of this account."
        )))
    }
}

fn check_name(name: &SettingName) -> Result<(), EcsError> {
    if name.is_known() {
        Ok(())
    } else {
        Err(EcsError::invalid(format!(
            "Invalid setting name '{name}'. Valid names: {}",
            SettingName::VALUES.join(", ")
        )))
    }
}

async fn store_setting(
    ecs: &Ecs,
    ctx: &RequestContext,
    name: SettingName,
    value: String,
    principal_arn: String,
) -> Result<Setting, EcsError> {
    check_name(&name)?;
    rules::validate(&name, &value)?;
    let setting = Setting {
        name: Some(name),
        value: Some(value),
        principal_arn: Some(principal_arn),
        r#type: Some(SettingType::User),
    };
    let write = Write::Put {
        doc: records::to_doc(&setting, 0),
        expect: Expect::Any,
    };
    if !try_commit(ecs.store(), &scope(ctx), vec![write]).await? {
        return Err(records::too_contended());
    }
    Ok(setting)
}

pub async fn put(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: PutAccountSettingRequest,
) -> Result<PutAccountSettingResponse, EcsError> {
    let p = principal(ctx, input.principal_arn.as_deref())?;
    Ok(PutAccountSettingResponse {
        setting: Some(store_setting(ecs, ctx, input.name, input.value, p).await?),
    })
}

pub async fn put_default(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: PutAccountSettingDefaultRequest,
) -> Result<PutAccountSettingDefaultResponse, EcsError> {
    let root = arn::root_principal(&ctx.account_id);
    Ok(PutAccountSettingDefaultResponse {
        setting: Some(store_setting(ecs, ctx, input.name, input.value, root).await?),
    })
}

pub async fn delete(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteAccountSettingRequest,
) -> Result<DeleteAccountSettingResponse, EcsError> {
    check_name(&input.name)?;
    let p = principal(ctx, input.principal_arn.as_deref())?;
    let id = setting_id(&p, Some(&input.name));
    let sc = scope(ctx);
    let existing = load::<Setting>(ecs.store(), &sc, &id).await?;
    let write = Write::Delete {
        kind: kind::ACCOUNT_SETTING,
        id,
        expect: Expect::Any,
    };
    if !try_commit(ecs.store(), &sc, vec![write]).await? {
        return Err(records::too_contended());
    }
    let setting = match existing {
        Some(s) => s.value,
        None => Setting {
            name: Some(input.name),
            value: None,
            principal_arn: Some(p),
            r#type: Some(SettingType::User),
        },
    };
    Ok(DeleteAccountSettingResponse {
        setting: Some(setting),
    })
}

/// The value in force for the caller: their own, else the account default,
/// else ECS's default.
pub async fn effective_value(
    ecs: &Ecs,
    ctx: &RequestContext,
    name: &SettingName,
) -> Result<String, EcsError> {
    Ok(effective(ecs, ctx, &ctx.principal_arn, name)
        .await?
        .value
        .unwrap_or_default())
}

async fn effective(
    ecs: &Ecs,
    ctx: &RequestContext,
    principal: &str,
    name: &SettingName,
) -> Result<Setting, EcsError> {
    let sc = scope(ctx);
    let root = arn::root_principal(&ctx.account_id);
    for p in [principal, root.as_str()] {
        if let Some(s) = load::<Setting>(ecs.store(), &sc, &setting_id(p, Some(name))).await? {
            return Ok(s.value);
        }
    }
    let (_, default) = rules::rule(name).unwrap_or((&[], ""));
    Ok(Setting {
        name: Some(name.clone()),
        value: Some(default.to_string()),
        principal_arn: Some(root),
        r#type: Some(SettingType::AwsManaged),
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListAccountSettingsRequest,
) -> Result<ListAccountSettingsResponse, EcsError> {
    let limit = page_size(input.max_results, 10, 10)?;
    if let Some(n) = &input.name {
        check_name(n)?;
    }
    if input.value.is_some() && input.name.is_none() {
        return Err(EcsError::invalid(
            "The value parameter requires the name parameter as well.",
        ));
    }
    let p = principal(ctx, input.principal_arn.as_deref())?;
    let names: Vec<SettingName> = match &input.name {
        Some(n) => vec![n.clone()],
        None => rules::all(),
    };
    let mut settings = Vec::new();
    if input.effective_settings.unwrap_or(false) {
        for n in &names {
            settings.push(effective(ecs, ctx, &p, n).await?);
        }
    } else {
        let q = Query {
            parent: Some(p.clone()),
            limit: 1000,
            ..Default::default()
        };
        let mine = records::list::<Setting>(ecs.store(), &scope(ctx), &q).await?;
        for n in &names {
            if let Some(s) = mine.iter().find(|s| s.value.name.as_ref() == Some(n)) {
                settings.push(s.value.clone());
            }
        }
    }
    if let Some(v) = &input.value {
        settings.retain(|s| s.value.as_ref() == Some(v));
    }
    // Pages follow the model's order of setting names.
    let filter = format!(
        "{:?}|{:?}|{p}|{:?}",
        input.name, input.value, input.effective_settings
    );
    let page = PageKey {
        operation: "ListAccountSettings",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &filter,
    };
    let position = |s: &Setting| {
        SettingName::VALUES
            .iter()
            .position(|v| Some(*v) == s.name.as_ref().map(|n| n.as_str()))
            .unwrap_or(usize::MAX)
    };
    if let Some(t) = &input.next_token {
        let after: usize = ecs
            .tokens
            .decode(&page, t)?
            .parse()
            .map_err(|_| EcsError::invalid("Invalid token"))?;
        settings.retain(|s| position(s) > after);
    }
    let next_token = (settings.len() > limit).then(|| {
        settings.truncate(limit);
        ecs.tokens
            .encode(&page, &position(&settings[limit - 1]).to_string())
    });
    Ok(ListAccountSettingsResponse {
        settings: Some(settings),
        next_token,
    })
}
