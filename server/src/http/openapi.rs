//! The OpenAPI 3.1 document, built from the router that serves: every route is registered through
//! [`OpenApiRouter`] with its handler's `#[utoipa::path]`, so a route cannot exist without its operation in
//! the document, nor an operation without its route. Served at `/openapi.json` with Swagger UI at `/docs`
//! (assets embedded in the binary, no CDN). `openapi/openapi.json` is the committed copy; a test fails when it
//! drifts from the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use super::AppState;

/// What the document says besides its paths: title, tags, the bearer scheme.
#[derive(OpenApi)]
#[openapi(
    info(title = "iPhoto sync", description = "Photos library sync: agent, web and worker surfaces. \
        Every error answer, of every route and every status, is the JSON envelope `ErrorBody` with one of \
        the `ErrorCode`s. A bearer token of the wrong scope for a route is a 403 (`wrong_scope`). Answers \
        not listed on an operation can come from any route: 405 (`method_not_allowed`, with `Allow`), 408 \
        (`request_timeout`), 414 (`uri_too_long`), 431 (`headers_too_large`), 500 (`internal`)."),
    modifiers(&BearerAuth),
    tags((name = "client", description = "The Mac agent (scope client)"),
        (name = "web", description = "Web frontends (scope web)"),
        (name = "admin", description = "Operators (scope admin)"),
        (name = "worker", description = "Enrichment workers (scope worker)"),
        (name = "blobs", description = "Presigned GETs of the local backend (signature in the URL)"),
        (name = "ops", description = "Health and metrics"))
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

/// An empty router carrying [`ApiDoc`], for the surfaces to merge into.
pub(super) fn base() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}

/// Registers a route whose last path parameter takes the rest of the path, slashes included
/// (`/client/iphoto/upload/{localIdentifier}` answers `/client/iphoto/upload/<UUID>/L0/001`). OpenAPI has no
/// such parameter, so the document keeps the plain `{name}` while axum gets `{*name}`.
pub(super) fn routes_with_tail(
    router: OpenApiRouter<AppState>,
    (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
    tail: &str,
) -> OpenApiRouter<AppState> {
    let plain = format!("{{{tail}}}");
    let mut router = router;
    for path in paths.paths.keys() {
        assert!(path.ends_with(&plain), "{path} does not end with {plain}");
        let served = format!("{}{{*{tail}}}", &path[..path.len() - plain.len()]);
        router = router.route(&served, method_router.clone());
    }
    let doc = router.get_openapi_mut();
    doc.paths.merge(paths);
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    router
}

/// The finished document: every operation that can fail on its own also says 503 (each reads the catalog
/// or the store, and either can be unreachable), and the build's version is left out, since it would make
/// the committed copy drift on every release.
pub(super) fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let unavailable = ResponseBuilder::new()
        .description("the catalog or the object store is unreachable (`unavailable`, `storage_unavailable`); retry later")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            if responses.keys().any(|status| status.starts_with('4')) {
                responses
                    .entry("503".to_owned())
                    .or_insert_with(|| unavailable.clone().into());
            }
        }
    }
    doc.info.version = "1".into();
    doc
}

/// The document as pretty JSON, as committed in `openapi/openapi.json`.
pub fn document() -> String {
    super::documented().to_pretty_json().unwrap_or_default()
}

/// `/openapi.json` and Swagger UI under `/docs`, serving `doc`.
pub(super) fn docs_router(doc: utoipa::openapi::OpenApi) -> axum::Router<AppState> {
    axum::Router::new().merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", doc))
}
