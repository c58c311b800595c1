//! API errors: each becomes a status code and a JSON body
//! `{"error": "...", ...}`. Internal errors are logged and answered with a
//! generic message, so server paths and internals do not reach clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::config::Diagnostics;

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// No token, or not a valid one.
    Unauthorized,
    /// A valid token without the scope or role the request needs.
    Forbidden(String),
    /// Not there, or not the caller's.
    NotFound(String),
    /// The request itself is wrong.
    BadRequest(String),
    /// A pipeline file with problems, as `sluice validate` reports them.
    Invalid(Diagnostics),
    /// Conflicts with what is there (in use, immutable, exists).
    Conflict(String),
    /// Over a count or size quota.
    Quota {
        /// The quota's name in `server.toml`.
        quota: &'static str,
        /// Its value.
        limit: u64,
        /// What the request would have brought it to.
        requested: u64,
    },
    /// The body is larger than the caller may send.
    TooLarge {
        /// Its value.
        limit: u64,
    },
    /// Over the tenant's API rate.
    RateLimited {
        /// `api_requests_per_s`.
        limit: u64,
        /// How long until a request would be accepted.
        retry_after: std::time::Duration,
    },
    /// Over a bound on things open at once (live taps).
    Busy {
        /// The bound's name in `server.toml`.
        bound: &'static str,
        /// Its value.
        limit: u64,
        /// What is open.
        what: &'static str,
    },
    /// Something broke on our side.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body): (StatusCode, Value) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing or invalid token: send `Authorization: Bearer TOKEN`"}),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, json!({ "error": m })),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "error": m })),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "error": m })),
            ApiError::Invalid(d) => {
                let sorted = d.sorted();
                let lines: Vec<String> = sorted.0.iter().map(|d| d.to_string()).collect();
                // The same, in parts, for clients that point at the line
                // (the web console); line 0 is the file as a whole.
                let problems: Vec<Value> = sorted
                    .0
                    .iter()
                    .map(|d| {
                        json!({
                            "line": d.at.line, "col": d.at.col,
                            "field": d.field, "message": d.message,
                        })
                    })
                    .collect();
                (
                    StatusCode::BAD_REQUEST,
                    json!({
                        "error": "invalid pipeline; nothing was changed",
                        "diagnostics": lines, "problems": problems,
                    }),
                )
            }
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({ "error": m })),
            ApiError::Quota {
                quota,
                limit,
                requested,
            } => (
                StatusCode::FORBIDDEN,
                json!({
                    "error": format!("over quota `{quota}`: {requested} requested, the limit is {limit}"),
                    "quota": quota, "limit": limit, "requested": requested,
                }),
            ),
            ApiError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({
                    "error": format!("request body over quota `max_request_bytes` ({limit} bytes)"),
                    "quota": "max_request_bytes", "limit": limit,
                }),
            ),
            ApiError::RateLimited { limit, retry_after } => {
                // Whole seconds, rounded up: `Retry-After` takes no fraction.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let body = json!({
                    "error": format!("over quota `api_requests_per_s` ({limit} a second, with bursts of `api_burst`); retry after {secs} s"),
                    "quota": "api_requests_per_s", "limit": limit, "retry_after_s": secs,
                });
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(axum::http::header::RETRY_AFTER, secs.to_string())],
                    Json(body),
                )
                    .into_response();
            }
            ApiError::Busy { bound, limit, what } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "error": format!("over `{bound}`: {limit} {what} are open already; close one or try again later"),
                    "bound": bound, "limit": limit,
                }),
            ),
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal error (see the server log)"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// What handlers return.
pub type ApiResult = Result<(StatusCode, Json<Value>), ApiError>;
