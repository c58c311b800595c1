//! Tenants (the operator's) and tokens (the operator's, or a tenant's own
//! with the `admin` scope). A token is returned once, when it is created;
//! listings show only its id, scope and label.

use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, Principal};
use super::error::{ApiError, ApiResult};
use super::policy::is_name;
use super::store::{now_ms, Scope, TenantRec};
use super::Server;

fn operator(who: &Principal) -> Result<(), ApiError> {
    match who {
        Principal::Operator => Ok(()),
        Principal::Tenant { .. } => Err(ApiError::Forbidden(
            "managing tenants needs the operator's admin token".into(),
        )),
    }
}

/// May `who` manage `tenant`'s tokens? Another tenant's are "not found".
fn manages(who: &Principal, tenant: &str) -> Result<(), ApiError> {
    match who {
        Principal::Operator => Ok(()),
        Principal::Tenant {
            tenant: own, scope, ..
        } if own == tenant => {
            if *scope >= Scope::Admin {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "managing tokens needs the `admin` scope".into(),
                ))
            }
        }
        Principal::Tenant { .. } => Err(not_found(tenant)),
    }
}

fn not_found(tenant: &str) -> ApiError {
    ApiError::NotFound(format!("no tenant `{tenant}`"))
}

fn view(s: &Server, t: &TenantRec) -> serde_json::Value {
    json!({"name": t.name, "created_ms": t.created_ms, "policy": s.config.policy(&t.name)})
}

/// `POST /v1/tenants` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    name: String,
}

/// Creates a tenant and its directories.
pub fn create(s: &Server, who: &Principal, body: NewTenant) -> ApiResult {
    operator(who)?;
    if !is_name(&body.name) {
        return Err(ApiError::BadRequest(format!(
            "invalid tenant name `{}`: 1-64 letters, digits, `_`, `-`, `.`, starting with a letter or digit",
            body.name.escape_debug()
        )));
    }
    if s.store.tenant(&body.name)?.is_some() {
        return Err(ApiError::Conflict(format!("tenant `{}` exists", body.name)));
    }
    let dir = s.tenant_dir(&body.name);
    for sub in ["plugins", "files", "pipelines"] {
        super::private_dir(&dir.join(sub)).map_err(anyhow::Error::from)?;
    }
    let t = TenantRec {
        name: body.name,
        created_ms: now_ms(),
    };
    s.store.put_tenant(&t)?;
    Ok((StatusCode::CREATED, Json(view(s, &t))))
}

/// Lists tenants.
pub fn list(s: &Server, who: &Principal) -> ApiResult {
    operator(who)?;
    let all: Vec<_> = s.store.tenants()?.iter().map(|t| view(s, t)).collect();
    Ok((StatusCode::OK, Json(json!({ "tenants": all }))))
}

/// One tenant, with its grant and what it uses of its quotas.
pub fn get(s: &Server, who: &Principal, name: &str) -> ApiResult {
    operator(who)?;
    let t = s.store.tenant(name)?.ok_or_else(|| not_found(name))?;
    let mut v = view(s, &t);
    v["pipelines"] = json!(s.store.pipelines(name)?.len());
    v["plugin_bytes"] = json!(super::plugins::stored_bytes(s, name)?);
    let u = super::usage::of(s, name);
    v["state_bytes"] = json!(u.state_bytes);
    v["dead_letter_bytes"] = json!(u.dead_letter_bytes);
    v["file_bytes"] = json!(u.file_bytes);
    let cpu = s.supervisor.cpu.usage(name);
    v["cpu_seconds"] = json!(cpu.used_ns as f64 / 1e9);
    v["cpu_throttled_seconds"] = json!(cpu.throttled_ns as f64 / 1e9);
    v["memory_mb"] = json!(s.supervisor.memory_mb(name));
    Ok((StatusCode::OK, Json(v)))
}

/// Deletes a tenant that owns no pipelines and no plugins.
pub fn delete(s: &Server, who: &Principal, name: &str) -> ApiResult {
    operator(who)?;
    s.store.tenant(name)?.ok_or_else(|| not_found(name))?;
    if !s.store.pipelines(name)?.is_empty() || !s.store.plugins(name)?.is_empty() {
        return Err(ApiError::Conflict(format!(
            "tenant `{name}` still has pipelines or plugins; delete them first"
        )));
    }
    for c in s.store.connections(name)? {
        s.store.delete_connection(name, &c.name)?;
    }
    s.store.delete_tenant(name)?;
    s.rate.forget(name);
    let _ = std::fs::remove_dir_all(s.tenant_dir(name));
    Ok((StatusCode::OK, Json(json!({ "deleted": name }))))
}

/// `POST /v1/tenants/{t}/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    scope: Scope,
    #[serde(default)]
    label: String,
}

/// Issues a token; the only response that ever carries it.
pub fn create_token(s: &Server, who: &Principal, tenant: &str, body: NewToken) -> ApiResult {
    manages(who, tenant)?;
    s.store.tenant(tenant)?.ok_or_else(|| not_found(tenant))?;
    if body.label.len() > 256 {
        return Err(ApiError::BadRequest("label: at most 256 bytes".into()));
    }
    let (rec, token) = auth::issue(tenant, body.scope, &body.label)?;
    s.store.put_token(&rec)?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": rec.id, "tenant": tenant, "scope": rec.scope, "label": rec.label, "token": token}),
        ),
    ))
}

/// A tenant's tokens, without secrets.
pub fn list_tokens(s: &Server, who: &Principal, tenant: &str) -> ApiResult {
    manages(who, tenant)?;
    s.store.tenant(tenant)?.ok_or_else(|| not_found(tenant))?;
    let tokens: Vec<_> = s
        .store
        .tokens(tenant)?
        .into_iter()
        .map(
            |t| json!({"id": t.id, "scope": t.scope, "label": t.label, "created_ms": t.created_ms}),
        )
        .collect();
    Ok((StatusCode::OK, Json(json!({ "tokens": tokens }))))
}

/// Revokes a token.
pub fn delete_token(s: &Server, who: &Principal, tenant: &str, id: &str) -> ApiResult {
    manages(who, tenant)?;
    match s.store.token(id)? {
        Some(t) if t.tenant == tenant => {
            s.store.delete_token(id)?;
            Ok((StatusCode::OK, Json(json!({ "revoked": id }))))
        }
        _ => Err(ApiError::NotFound(format!(
            "no token `{}`",
            id.escape_debug()
        ))),
    }
}

/// Who the caller is (never the token itself).
pub fn whoami(who: &Principal) -> ApiResult {
    let v = match who {
        Principal::Operator => json!({"role": "operator"}),
        Principal::Tenant {
            tenant,
            scope,
            token_id,
        } => json!({"role": "tenant", "tenant": tenant, "scope": scope, "token_id": token_id}),
    };
    Ok((StatusCode::OK, Json(v)))
}
