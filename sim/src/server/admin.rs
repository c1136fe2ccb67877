//! `/sim/admin/…`: the fault-injection API over HTTP, for tools that do not embed the
//! sim (the same switches as the [`Sim`](crate::Sim) methods).
//!
//! | request | effect |
//! |---|---|
//! | `POST /sim/admin/watches/drop[?resource=pods]` | end open watches |
//! | `POST /sim/admin/watches/expire[?count=N]` | next N watches (or all until cleared) get 410 |
//! | `POST /sim/admin/lists/fail?code=500\|429[&count=N]` | lists fail |
//! | `POST /sim/admin/latency?ms=N` | delay every API response |
//! | `POST /sim/admin/pause`, `POST /sim/admin/unpause` | hold requests and watch events |
//! | `POST /sim/admin/clear` | clear every fault |
//! | `GET /sim/admin/watches` | open watch counts per resource and in total |

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::Ctx;
use crate::fault::{FaultCount, ListFailure};

use crate::status::ApiError;

type Params = Query<HashMap<String, String>>;

pub(super) fn router() -> Router<Ctx> {
    Router::new()
        .route("/watches", get(open_watches))
        .route("/watches/drop", post(drop_watches))
        .route("/watches/expire", post(expire_watches))
        .route("/lists/fail", post(fail_lists))
        .route("/latency", post(latency))
        .route("/pause", post(pause))
        .route("/unpause", post(unpause))
        .route("/clear", post(clear))
}

fn count(params: &HashMap<String, String>) -> Result<FaultCount, ApiError> {
    match params.get("count") {
        None => Ok(FaultCount::UntilCleared),
        Some(n) => n
            .parse()
            .map(FaultCount::Times)
            .map_err(|_| ApiError::bad_request(format!("count must be a number, got {n:?}"))),
    }
}

fn done() -> Response {
    Json(json!({ "ok": true })).into_response()
}

async fn open_watches(State(ctx): State<Ctx>) -> Json<serde_json::Value> {
    let table = ctx.store.table();
    let per_resource: BTreeMap<String, usize> = table
        .iter()
        .map(|(id, r)| (r.qualified(), ctx.faults.open_watches(id)))
        .filter(|(_, n)| *n > 0)
        .collect();
    Json(json!({ "total": ctx.faults.open_watches_total(), "resources": per_resource }))
}

async fn drop_watches(State(ctx): State<Ctx>, Query(params): Params) -> Response {
    let resource = match params.get("resource") {
        None => None,
        Some(plural) => match ctx.store.table().by_name(plural) {
            Some((id, _)) => Some(id),
            None => {
                return ApiError::bad_request(format!("unknown resource {plural:?}")).into_response();
            }
        },
    };
    tracing::info!(
        resource = params.get("resource").map_or("*", String::as_str),
        "dropping watches"
    );
    ctx.faults.drop_watches(resource);
    done()
}

async fn expire_watches(State(ctx): State<Ctx>, Query(params): Params) -> Response {
    match count(&params) {
        Ok(count) => {
            ctx.faults.expire_watches(Some(count));
            done()
        }
        Err(e) => e.into_response(),
    }
}

async fn fail_lists(State(ctx): State<Ctx>, Query(params): Params) -> Response {
    let failure = match params.get("code").map(String::as_str) {
        None | Some("500") => ListFailure::InternalError,
        Some("429") => ListFailure::TooManyRequests,
        Some(other) => {
            return ApiError::bad_request(format!("code must be 500 or 429, got {other:?}")).into_response();
        }
    };
    match count(&params) {
        Ok(count) => {
            ctx.faults.fail_lists(Some((failure, count)));
            done()
        }
        Err(e) => e.into_response(),
    }
}

async fn latency(State(ctx): State<Ctx>, Query(params): Params) -> Response {
    match params.get("ms").map(|ms| ms.parse::<u64>()) {
        Some(Ok(ms)) => {
            ctx.faults.set_latency(Duration::from_millis(ms));
            done()
        }
        _ => ApiError::bad_request("ms must be a number of milliseconds").into_response(),
    }
}

async fn pause(State(ctx): State<Ctx>) -> Response {
    ctx.faults.set_paused(true);
    done()
}

async fn unpause(State(ctx): State<Ctx>) -> Response {
    ctx.faults.set_paused(false);
    done()
}

async fn clear(State(ctx): State<Ctx>) -> Response {
    ctx.faults.clear();
    done()
}
