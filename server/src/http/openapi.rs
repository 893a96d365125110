//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` and the `api` crate's schemas,
//! served at `/openapi.json` with Swagger UI at `/docs` (assets embedded in the binary, no CDN).
//! `openapi/openapi.json` is the committed copy; a test fails when it drifts from the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, blobs, client, ops, web, worker};

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(title = "iPhoto sync", description = "Photos library sync: agent, web and worker surfaces."),
    paths(
        client::sync::post_sync,
        client::albums::post_albums,
        client::pending::get_pending,
        client::upload::post_upload,
        client::resumable::head_upload,
        client::resumable::patch_upload,
        client::resumable::delete_upload,
        client::resumable::options_upload,
        client::stats::get_stats,
        web::photos::get_photos,
        web::photos::get_photo,
        web::albums::get_albums,
        web::albums::get_album,
        web::history::get_photo_history,
        web::history::get_changes,
        admin::post_restore,
        worker::post_lease,
        worker::post_result,
        worker::post_fail,
        blobs::get_blob,
        ops::get_healthz,
        ops::get_readyz,
    ),
    components(schemas(api::ErrorBody, api::SyncRequest, api::SyncAnswer, api::UploadAnswer)),
    modifiers(&BearerAuth),
    tags((name = "client", description = "The Mac agent (scope client)"),
        (name = "web", description = "Web frontends (scope web)"),
        (name = "admin", description = "Operators (scope admin)"),
        (name = "worker", description = "Enrichment workers (scope worker)"),
        (name = "blobs", description = "Presigned GETs of the local backend (signature in the URL)"),
        (name = "ops", description = "Health"))
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON, as committed in `openapi/openapi.json`.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    // The version of the build would make the committed copy drift on every release.
    doc.info.version = "1".into();
    doc.to_pretty_json().unwrap_or_default()
}

/// `/openapi.json` and Swagger UI under `/docs`.
pub(super) fn router() -> axum::Router<super::AppState> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = "1".into();
    axum::Router::new().merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", doc))
}
