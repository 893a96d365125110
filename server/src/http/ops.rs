//! Operations: liveness and readiness.

use api::ErrorCode;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use super::extract::Json;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(get_healthz))
        .routes(routes!(get_readyz))
        .routes(routes!(super::metrics::get_metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", operation_id = "get_healthz", responses((status = 200)))]
pub(crate) async fn get_healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The catalog and the object store both answer.
#[utoipa::path(get, path = "/readyz", tag = "ops", operation_id = "get_readyz",
    responses((status = 200), (status = 503, body = api::ErrorBody)))]
pub(crate) async fn get_readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let catalog = state.catalog().ping().await;
    let store = state.store().check().await;
    if let Err(e) = &catalog {
        tracing::warn!(error = %e, "readiness: catalog");
    }
    if let Err(e) = &store {
        tracing::warn!(error = %e, "readiness: store");
    }
    if catalog.is_err() || store.is_err() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            format!(
                "catalog {}, store {}",
                if catalog.is_ok() { "ok" } else { "unreachable" },
                if store.is_ok() { "ok" } else { "unreachable" }
            ),
        ));
    }
    Ok(Json(
        serde_json::json!({ "status": "ready", "catalog": "ok", "store": "ok" }),
    ))
}
