//! The HTTP API: routes under `/v1`, who may call what, request bounds, and
//! the connection loop.
//!
//! Bounds: a request head of at most 16 KiB and 64 headers (hyper answers
//! 431 beyond them), 10 s to send it, a connection lives at most 120 s,
//! `max_connections` at once. The token is checked before the body is read;
//! a body over the caller's `max_request_bytes` gets 413 (from
//! `Content-Length` alone when it is declared). Handlers do their work on
//! the blocking pool, never on the I/O threads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::auth::{self, Principal};
use super::error::{ApiError, ApiResult};
use super::store::Scope;
use super::{connections, console, pipelines, plugins, tenants, Server};

/// Most bytes of request line and headers.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers in a request.
pub const MAX_HEADERS: usize = 64;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

type Shared = Arc<Server>;

/// Routes with the methods each serves, as they are added to the router:
/// the OpenAPI document's test compares this list with the document.
pub struct Routes {
    router: Router<Shared>,
    /// (path in axum's `{param}` syntax, methods).
    pub served: Vec<(&'static str, &'static [&'static str])>,
}

impl Routes {
    fn add(
        mut self,
        path: &'static str,
        methods: &'static [&'static str],
        route: MethodRouter<Shared>,
    ) -> Self {
        self.router = self.router.route(path, route);
        self.served.push((path, methods));
        self
    }
}

/// Every route, without the server's state.
pub fn routes() -> Routes {
    Routes {
        router: Router::new(),
        served: Vec::new(),
    }
    .add(
        "/v1/health",
        &["GET"],
        get(|| async { Json(json!({"ok": true})) }),
    )
    .add("/v1/openapi.json", &["GET"], get(openapi))
    .add("/metrics", &["GET"], get(prometheus))
    .add("/v1/whoami", &["GET"], get(whoami))
    .add(
        "/v1/tenants",
        &["GET", "POST"],
        get(list_tenants).post(create_tenant),
    )
    .add(
        "/v1/tenants/{tenant}",
        &["GET", "DELETE"],
        get(get_tenant).delete(delete_tenant),
    )
    .add(
        "/v1/tenants/{tenant}/tokens",
        &["GET", "POST"],
        get(list_tokens).post(create_token),
    )
    .add(
        "/v1/tenants/{tenant}/tokens/{id}",
        &["DELETE"],
        delete(delete_token),
    )
    .add(
        "/v1/plugins",
        &["GET", "POST"],
        get(list_plugins).post(upload_plugin),
    )
    .add(
        "/v1/plugins/{plugin}",
        &["GET", "DELETE"],
        get(get_plugin).delete(delete_plugin),
    )
    .add(
        "/v1/connections",
        &["GET", "POST"],
        get(list_connections).post(create_connection),
    )
    .add(
        "/v1/connections/{connection}",
        &["GET", "PUT", "DELETE"],
        get(get_connection)
            .put(put_connection)
            .delete(delete_connection),
    )
    .add("/v1/validate", &["POST"], post(validate))
    .add(
        "/v1/pipelines",
        &["GET", "POST"],
        get(list_pipelines).post(create_pipeline),
    )
    .add(
        "/v1/pipelines/{name}",
        &["GET", "PUT", "DELETE"],
        get(get_pipeline).put(put_pipeline).delete(delete_pipeline),
    )
    .add(
        "/v1/pipelines/{name}/status",
        &["GET"],
        get(pipeline_status),
    )
    .add("/v1/pipelines/{name}/logs", &["GET"], get(pipeline_logs))
    .add(
        "/v1/pipelines/{name}/dead-letters",
        &["GET"],
        get(pipeline_dead_letters),
    )
    .add(
        "/v1/pipelines/{name}/start",
        &["POST"],
        post(start_pipeline),
    )
    .add("/v1/pipelines/{name}/stop", &["POST"], post(stop_pipeline))
    .add(
        "/v1/pipelines/{name}/pause",
        &["POST"],
        post(pause_pipeline),
    )
    // The web console (issue 16): its files, and the routes it adds to the
    // API (graph, history, dead-letter replay and purge). Kept together so
    // that other route additions merge cleanly.
    .add("/", &["GET"], get(console::home))
    .add("/console/", &["GET"], get(console::index))
    .add("/console/{asset}", &["GET"], get(console::asset))
    .add("/v1/pipelines/{name}/graph", &["GET"], get(pipeline_graph))
    .add(
        "/v1/pipelines/{name}/history",
        &["GET"],
        get(pipeline_history),
    )
    .add(
        "/v1/pipelines/{name}/dead-letters/replay",
        &["POST"],
        post(replay_dead_letters),
    )
    .add(
        "/v1/pipelines/{name}/dead-letters/purge",
        &["POST"],
        post(purge_dead_letters),
    )
    .add("/v1/pipelines/{name}/tap", &["GET"], get(pipeline_tap))
    .add("/v1/files", &["GET"], get(list_files))
    .add(
        "/v1/files/{*path}",
        &["GET", "PUT", "DELETE"],
        get(get_file).put(put_file).delete(delete_file),
    )
}

async fn list_files(State(s): State<Shared>, h: HeaderMap) -> Response {
    call(s, h, move |s, who| {
        super::files::list(s, &tenant_of(who, Scope::Read)?)
    })
    .await
}

async fn put_file(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(p): Path<String>,
    body: Body,
) -> Response {
    call_with_body(s, h, body, move |s, who, b| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        // One upload at a time per tenant: two cannot both fit the quota.
        let _guard = s.lock_tenant(&tenant);
        super::files::put(s, &tenant, &p, &b)
    })
    .await
}

async fn delete_file(State(s): State<Shared>, h: HeaderMap, Path(p): Path<String>) -> Response {
    call(s, h, move |s, who| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        super::files::delete(s, &tenant, &p)
    })
    .await
}

/// A file's bytes, streamed from a thread in chunks: a large output file
/// never sits in memory whole.
async fn get_file(State(s): State<Shared>, h: HeaderMap, Path(p): Path<String>) -> Response {
    let opened = async {
        let who = authenticate(&s, &h).await?;
        let s = s.clone();
        blocking(move || super::files::open(&s, &tenant_of(&who, Scope::Read)?, &p)).await
    }
    .await;
    let (file, len) = match opened {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let spawned = std::thread::Builder::new()
        .name("sluice-file-get".into())
        .spawn(move || {
            use std::io::Read;
            // What the header announced, though a sink may be appending.
            let mut file = file.take(len);
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        return ApiError::Internal(anyhow::anyhow!("starting a download thread: {e}"))
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(super::tap::Frames(rx)),
    )
        .into_response()
}

/// A live tap (Server-Sent Events, see [`super::tap`]).
async fn pipeline_tap(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(n): Path<String>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let q = query(q);
    let opened = async {
        let who = authenticate(&s, &h).await?;
        let s = s.clone();
        blocking(move || super::tap::open(&s, &tenant_of(&who, Scope::Read)?, &n, q)).await
    }
    .await;
    match opened {
        Ok(o) => super::tap::stream(o),
        Err(e) => e.into_response(),
    }
}

async fn pipeline_history(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(n): Path<String>,
) -> Response {
    call(s, h, move |s, who| {
        super::history::get(s, &tenant_of(who, Scope::Read)?, &n)
    })
    .await
}

async fn replay_dead_letters(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(n): Path<String>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let a = query(q).and_then(|q| super::dead_letters::Action::parse(&q, &["to", "dry_run"]));
    call(s, h, move |s, who| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        // Held for the whole replay: a start now would race it for the state.
        let _guard = s.lock_tenant(&tenant);
        super::dead_letters::replay(s, &tenant, &n, a)
    })
    .await
}

async fn purge_dead_letters(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(n): Path<String>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let a = query(q)
        .and_then(|q| super::dead_letters::Action::parse(&q, &["replayed", "all", "dry_run"]));
    call(s, h, move |s, who| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        super::dead_letters::purge(s, &tenant, &n, a)
    })
    .await
}

async fn pipeline_graph(State(s): State<Shared>, h: HeaderMap, Path(n): Path<String>) -> Response {
    call(s, h, move |s, who| {
        console::graph(s, &tenant_of(who, Scope::Read)?, &n)
    })
    .await
}

/// The routes, serving `server`.
pub fn router(server: Shared) -> Router {
    routes()
        .router
        .fallback(|| async { ApiError::NotFound("no such route; the API is under /v1".into()) })
        .with_state(server)
}

/// The bearer token of a request, if it carries one.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (kind, token) = v.split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("request task: {e}")))?
}

/// Who is calling; a tenant over its API rate gets 429 here, before any
/// body is read.
async fn authenticate(s: &Shared, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
    let s = s.clone();
    blocking(move || {
        let who = auth::authenticate(&s.store, &s.config.admin_token, &token)?
            .ok_or(ApiError::Unauthorized)?;
        if let Principal::Tenant { tenant, .. } = &who {
            let p = s.config.policy(tenant);
            s.rate
                .take(tenant, p.api_requests_per_s, p.api_burst)
                .map_err(|retry_after| ApiError::RateLimited {
                    limit: p.api_requests_per_s,
                    retry_after,
                })?;
        }
        Ok(who)
    })
    .await
}

/// The caller's tenant, if its token has `scope`.
fn tenant_of(who: &Principal, scope: Scope) -> Result<String, ApiError> {
    match who {
        Principal::Operator => Err(ApiError::Forbidden(
            "the operator's token manages tenants; plugins and pipelines need a tenant's token"
                .into(),
        )),
        Principal::Tenant { .. } => who.tenant_with(scope).map(str::to_string).ok_or_else(|| {
            ApiError::Forbidden(format!(
                "this needs a token with the `{}` scope",
                serde_json::to_value(scope)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ))
        }),
    }
}

/// Reads a body of at most the caller's `max_request_bytes`.
async fn read_body(
    s: &Shared,
    who: &Principal,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let limit = match who {
        Principal::Operator => s.config.max_request_bytes(),
        Principal::Tenant { tenant, .. } => s.config.policy(tenant).max_request_bytes,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| ApiError::TooLarge { limit })
}

/// A query string, or 400 in the API's JSON shape (axum's own rejection is text).
fn query(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {}", e.body_text())))
}

/// Query parameter `name` as a whole number, `default` when absent.
pub(super) fn whole_number(
    q: &HashMap<String, String>,
    name: &str,
    default: u64,
) -> Result<u64, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`{name}` is a whole number, got `{}`",
                v.escape_debug()
            ))
        }),
    }
}

fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// A JSON object body (serde would also take a struct written as an array).
fn json_object_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let v: serde_json::Value = json_body(bytes)?;
    if !v.is_object() {
        return Err(ApiError::BadRequest(
            "invalid JSON body: expected an object".into(),
        ));
    }
    serde_json::from_value(v).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

fn text_body(bytes: Bytes) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::BadRequest("the pipeline file is not UTF-8".into()))
}

/// Authenticates, then runs `f` on the blocking pool.
async fn call(
    s: Shared,
    headers: HeaderMap,
    f: impl FnOnce(&Server, &Principal) -> ApiResult + Send + 'static,
) -> Response {
    let outcome = async {
        let who = authenticate(&s, &headers).await?;
        blocking(move || f(&s, &who)).await
    }
    .await;
    respond(outcome)
}

/// Authenticates, reads the body within the caller's limit, then runs `f`.
async fn call_with_body(
    s: Shared,
    headers: HeaderMap,
    body: Body,
    f: impl FnOnce(&Server, &Principal, Bytes) -> ApiResult + Send + 'static,
) -> Response {
    let outcome = async {
        let who = authenticate(&s, &headers).await?;
        let bytes = read_body(&s, &who, &headers, body).await?;
        blocking(move || f(&s, &who, bytes)).await
    }
    .await;
    respond(outcome)
}

fn respond(outcome: ApiResult) -> Response {
    match outcome {
        Ok(ok) => ok.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::DOCUMENT,
    )
        .into_response()
}

/// `/metrics`: every tenant's series for the operator, a tenant's own for
/// its tokens (see [`super::metrics`]).
async fn prometheus(State(s): State<Shared>, h: HeaderMap) -> Response {
    let outcome = async {
        let who = authenticate(&s, &h).await?;
        let prefix = match &who {
            Principal::Operator => String::new(),
            Principal::Tenant { tenant, .. } => format!("{tenant}/"),
        };
        blocking(move || {
            let mut text = super::metrics::render(&s.supervisor.snapshots(&prefix));
            let tenants: Vec<(String, crate::pipeline::fair::Usage)> = s
                .store
                .tenants()?
                .into_iter()
                .map(|t| t.name)
                .filter(|t| prefix.is_empty() || prefix == format!("{t}/"))
                .map(|t| {
                    let u = s.supervisor.cpu.usage(&t);
                    (t, u)
                })
                .collect();
            text.push_str(&super::metrics::render_cpu(&tenants));
            Ok(text)
        })
        .await
    }
    .await;
    match outcome {
        Ok(text) => ([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn whoami(State(s): State<Shared>, h: HeaderMap) -> Response {
    call(s, h, |_, who| tenants::whoami(who)).await
}

async fn list_tenants(State(s): State<Shared>, h: HeaderMap) -> Response {
    call(s, h, tenants::list).await
}

async fn create_tenant(State(s): State<Shared>, h: HeaderMap, body: Body) -> Response {
    call_with_body(s, h, body, |s, who, b| {
        tenants::create(s, who, json_body(&b)?)
    })
    .await
}

async fn get_tenant(State(s): State<Shared>, h: HeaderMap, Path(t): Path<String>) -> Response {
    call(s, h, move |s, who| tenants::get(s, who, &t)).await
}

async fn delete_tenant(State(s): State<Shared>, h: HeaderMap, Path(t): Path<String>) -> Response {
    call(s, h, move |s, who| tenants::delete(s, who, &t)).await
}

async fn list_tokens(State(s): State<Shared>, h: HeaderMap, Path(t): Path<String>) -> Response {
    call(s, h, move |s, who| tenants::list_tokens(s, who, &t)).await
}

async fn create_token(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(t): Path<String>,
    body: Body,
) -> Response {
    call_with_body(s, h, body, move |s, who, b| {
        tenants::create_token(s, who, &t, json_body(&b)?)
    })
    .await
}

async fn delete_token(
    State(s): State<Shared>,
    h: HeaderMap,
    Path((t, id)): Path<(String, String)>,
) -> Response {
    call(s, h, move |s, who| tenants::delete_token(s, who, &t, &id)).await
}

async fn list_plugins(State(s): State<Shared>, h: HeaderMap) -> Response {
    call(s, h, |s, who| {
        plugins::list(s, &tenant_of(who, Scope::Read)?)
    })
    .await
}

async fn upload_plugin(
    State(s): State<Shared>,
    h: HeaderMap,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Body,
) -> Response {
    call_with_body(s, h, body, move |s, who, b| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let q = query(q)?;
        let name = q
            .get("name")
            .ok_or_else(|| ApiError::BadRequest("missing `?name=NAME`".into()))?;
        let _guard = s.lock_tenant(&tenant);
        plugins::upload(s, &tenant, name, &b)
    })
    .await
}

async fn get_plugin(State(s): State<Shared>, h: HeaderMap, Path(p): Path<String>) -> Response {
    call(s, h, move |s, who| {
        plugins::get(s, &tenant_of(who, Scope::Read)?, &p)
    })
    .await
}

async fn delete_plugin(State(s): State<Shared>, h: HeaderMap, Path(p): Path<String>) -> Response {
    call(s, h, move |s, who| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        plugins::delete(s, &tenant, &p)
    })
    .await
}

async fn list_connections(State(s): State<Shared>, h: HeaderMap) -> Response {
    call(s, h, |s, who| {
        connections::list(s, &tenant_of(who, Scope::Read)?)
    })
    .await
}

async fn create_connection(State(s): State<Shared>, h: HeaderMap, body: Body) -> Response {
    call_with_body(s, h, body, |s, who, b| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        connections::put(s, &tenant, None, json_object_body(&b)?)
    })
    .await
}

async fn get_connection(State(s): State<Shared>, h: HeaderMap, Path(c): Path<String>) -> Response {
    call(s, h, move |s, who| {
        connections::get(s, &tenant_of(who, Scope::Read)?, &c)
    })
    .await
}

async fn put_connection(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(c): Path<String>,
    body: Body,
) -> Response {
    call_with_body(s, h, body, move |s, who, b| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        connections::put(s, &tenant, Some(&c), json_object_body(&b)?)
    })
    .await
}

async fn delete_connection(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(c): Path<String>,
) -> Response {
    call(s, h, move |s, who| {
        connections::delete(s, &tenant_of(who, Scope::Deploy)?, &c)
    })
    .await
}

async fn validate(State(s): State<Shared>, h: HeaderMap, body: Body) -> Response {
    call_with_body(s, h, body, |s, who, b| {
        pipelines::validate(s, &tenant_of(who, Scope::Read)?, &text_body(b)?)
    })
    .await
}

async fn list_pipelines(State(s): State<Shared>, h: HeaderMap) -> Response {
    call(s, h, |s, who| {
        pipelines::list(s, &tenant_of(who, Scope::Read)?)
    })
    .await
}

async fn create_pipeline(State(s): State<Shared>, h: HeaderMap, body: Body) -> Response {
    call_with_body(s, h, body, |s, who, b| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        pipelines::deploy(s, &tenant, None, &text_body(b)?)
    })
    .await
}

async fn put_pipeline(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(n): Path<String>,
    body: Body,
) -> Response {
    call_with_body(s, h, body, move |s, who, b| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        pipelines::deploy(s, &tenant, Some(&n), &text_body(b)?)
    })
    .await
}

async fn get_pipeline(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(n): Path<String>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let spec = query(q).and_then(|q| match q.get("spec").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::BadRequest("`spec` is `true` or `false`".into())),
    });
    call(s, h, move |s, who| {
        pipelines::get(s, &tenant_of(who, Scope::Read)?, &n, spec?)
    })
    .await
}

async fn pipeline_logs(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(n): Path<String>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let page = query(q).and_then(|q| {
        Ok((
            whole_number(&q, "since", 0)?,
            whole_number(&q, "limit", 500)?,
        ))
    });
    call(s, h, move |s, who| {
        pipelines::logs(s, &tenant_of(who, Scope::Read)?, &n, page)
    })
    .await
}

async fn pipeline_dead_letters(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(n): Path<String>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let q = query(q).and_then(|q| super::dead_letters::Query::parse(&q));
    call(s, h, move |s, who| {
        super::dead_letters::list(s, &tenant_of(who, Scope::Read)?, &n, q)
    })
    .await
}

async fn pipeline_status(State(s): State<Shared>, h: HeaderMap, Path(n): Path<String>) -> Response {
    call(s, h, move |s, who| {
        pipelines::get(s, &tenant_of(who, Scope::Read)?, &n, false)
    })
    .await
}

async fn start_pipeline(State(s): State<Shared>, h: HeaderMap, Path(n): Path<String>) -> Response {
    call(s, h, move |s, who| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        pipelines::start(s, &tenant, &n)
    })
    .await
}

async fn stop_pipeline(State(s): State<Shared>, h: HeaderMap, Path(n): Path<String>) -> Response {
    call(s, h, move |s, who| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        pipelines::stop(s, &tenant, &n)
    })
    .await
}

async fn pause_pipeline(State(s): State<Shared>, h: HeaderMap, Path(n): Path<String>) -> Response {
    call(s, h, move |s, who| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        pipelines::pause(s, &tenant, &n)
    })
    .await
}

async fn delete_pipeline(State(s): State<Shared>, h: HeaderMap, Path(n): Path<String>) -> Response {
    call(s, h, move |s, who| {
        let tenant = tenant_of(who, Scope::Deploy)?;
        let _guard = s.lock_tenant(&tenant);
        pipelines::delete(s, &tenant, &n)
    })
    .await
}

/// Serves the API until SIGINT or SIGTERM. Prints `SLUICE_SERVER_URL=http://ADDR`
/// on stdout once listening.
pub async fn listen(server: Shared) -> Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let listener = tokio::net::TcpListener::bind(server.config.listen)
        .await
        .with_context(|| format!("listening on {}", server.config.listen))?;
    let addr = listener.local_addr()?;
    let tls = server
        .config
        .tls
        .clone()
        .map(tokio_rustls::TlsAcceptor::from);
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("SLUICE_SERVER_URL={scheme}://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, "sluice serve listening");
    let slots = Arc::new(tokio::sync::Semaphore::new(server.config.max_connections));
    let app = router(server);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p?,
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        };
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS);
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
                }
                Some(acceptor) => {
                    // The handshake is bounded like a request head: a client
                    // that opens and says nothing holds a slot 10 s at most.
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        drop(permit);
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
                }
            }
            drop(permit);
        });
    }
    tracing::info!("signal received: shutting down");
    Ok(())
}
