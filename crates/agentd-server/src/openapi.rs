//! The API's OpenAPI 3.1 document and its Swagger UI. The operations come
//! from the handlers' `#[utoipa::path]` attributes, collected by the router
//! (see `routes::api`); this module adds what no single handler knows: the
//! auth scheme, the errors the middleware answers for every route, and the
//! two routes that serve the document.

use crate::error::ErrorBody;
use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApiVersion, Ref, RefOr};
use utoipa_swagger_ui::SwaggerUi;

/// Where the document is served.
pub(crate) const SPEC_PATH: &str = "/openapi.json";
/// Where Swagger UI is served (its files are compiled in: no network).
pub(crate) const DOCS_PATH: &str = "/docs";
/// The name of the security scheme every `/v1` operation requires.
const BEARER: &str = "bearer";

/// The parts of the document written by hand.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "agentd",
        description = "The HTTP API of agentd, a runtime for LLM agents. Every `/v1` route needs \
            a credential: `Authorization: Bearer` with an API key (`agd_...`, under \
            `auth.mode = \"api_key\"`) or a JWT (`auth.mode = \"jwt\"`). Under \
            `auth.mode = \"none\"` (development only) no credential is read; the identity \
            comes from the `X-Tenant-Id`, `X-Principal-Id` and `X-Roles` headers instead. \
            Errors are `{\"error\": {\"code\", \"message\"}}` with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "runs", description = "Start, read, follow, resume and cancel runs."),
        (name = "dead-letters", description = "Runs that exhausted their attempts."),
        (name = "conversations", description = "The memory that links runs."),
        (name = "keys", description = "API keys of the tenant."),
        (name = "audit", description = "The tenant's audit log."),
        (name = "usage", description = "The tenant's runs, failures, tokens and cost, grouped, \
            and its budgets."),
        (name = "agents", description = "The configured agents as the server sees them."),
        (name = "rollouts", description = "Versioned agents: which version new runs start \
            on, with each version's outcomes; operators only."),
        (name = "schedules", description = "The tenant's `[[schedules]]`: their next tick \
            and the run their latest tick started."),
        (name = "admin", description = "Operating the process: reload the config."),
        (name = "openai", description = "The OpenAI-compatible API: agents as models, chat \
            completions as runs. Its errors are in OpenAI's shape, `{\"error\": {\"message\", \
            \"type\", \"code\", \"param\"}}`."),
        (name = "probes", description = "Liveness, readiness, metrics and this document; \
            no credential (`/metrics` needs one with `server.metrics_auth`)."),
    ),
)]
struct Base;

/// The full document: the routes' operations in `spec`, completed with the
/// auth scheme, the middleware's errors and the document's own routes.
/// `metrics_auth`: whether `/metrics` needs a credential
/// (`server.metrics_auth`).
pub(crate) fn document(
    spec: utoipa::openapi::OpenApi,
    metrics_auth: bool,
) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.merge(spec);
    // utoipa defaults to 3.1 today; pinned, as generators and fuzzers
    // (schemathesis) do not all read 3.2 yet.
    doc.openapi = OpenApiVersion::Version31;
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("agd_<id>_<secret> API key, or a JWT")
                .description(Some(
                    "An API key minted by `agentd keys create` or `POST /v1/keys` \
                     (`auth.mode = \"api_key\"`), or a JWT from the identity provider \
                     (`auth.mode = \"jwt\"`).",
                ))
                .build(),
        ),
    );
    // Every operation needs the bearer credential unless it says otherwise.
    doc.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    let open = || Some(vec![SecurityRequirement::default()]);
    for (path, item) in doc.paths.paths.iter_mut() {
        let Some(get) = item.get.as_mut() else {
            continue;
        };
        if path == "/metrics" {
            get.security = if metrics_auth { None } else { open() };
        }
    }
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let spec = ResponseBuilder::new()
        .description("The OpenAPI document.")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                .build(),
        )
        .build();
    let page = ResponseBuilder::new()
        .description("The Swagger UI page (where the redirect leads).")
        .content(
            "text/html",
            ContentBuilder::new().schema(Some(string())).build(),
        )
        .build();
    let redirect = ResponseBuilder::new()
        .description("Redirect to `/docs/`, the Swagger UI page.")
        .header(
            "Location",
            HeaderBuilder::new().schema(Some(string())).build(),
        )
        .build();
    doc.paths.paths.insert(
        SPEC_PATH.to_string(),
        PathItem::new(
            HttpMethod::Get,
            open_get("openapi", "This document (OpenAPI 3.1).", [("200", spec)]),
        ),
    );
    doc.paths.paths.insert(
        DOCS_PATH.to_string(),
        PathItem::new(
            HttpMethod::Get,
            open_get(
                "docs",
                "Swagger UI over this document.",
                [("303", redirect), ("200", page)],
            ),
        ),
    );
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            add_common_errors(op);
        }
    }
    doc
}

/// An operation that needs no credential.
fn open_get<const N: usize>(
    id: &str,
    summary: &str,
    responses: [(&str, Response); N],
) -> Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .tag("probes")
        .security(SecurityRequirement::default());
    for (status, response) in responses {
        op = op.response(status, response);
    }
    op.build()
}

/// The operations of a path.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Documents the errors the middleware and the extractors answer on every
/// route they guard, next to the operation's own: a handler's more specific
/// description of the same status wins.
fn add_common_errors(op: &mut Operation) {
    // The OpenAI-compatible routes answer every error in OpenAI's shape.
    let openai = op
        .tags
        .as_ref()
        .is_some_and(|t| t.iter().any(|t| t == "openai"));
    let body = if openai {
        "OpenAiErrorBody"
    } else {
        "ErrorBody"
    };
    let error = |description: &str| error(description, body);
    let authenticated = match &op.security {
        None => true,
        Some(reqs) => reqs.iter().any(|r| *r != SecurityRequirement::default()),
    };
    let mut add = |status: &str, response: Response| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(response));
    };
    if authenticated {
        add(
            "400",
            error(
                "The request is malformed: a bad parameter, body or (under `auth.mode = \"none\"`) identity header.",
            ),
        );
        let mut unauthorized = error(
            "No credential, or one that was refused; `error.reason` says why \
             (`missing_credential`, `expired`, `revoked`, ...).",
        );
        unauthorized.headers.insert(
            "WWW-Authenticate".into(),
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
                .into(),
        );
        add("401", unauthorized);
        let mut limited = error("A rate limit (`[rate_limit]`) refuses the request.");
        limited.headers.insert(
            "Retry-After".into(),
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("Seconds to wait before retrying."))
                .build()
                .into(),
        );
        add("429", limited);
    }
    if op.request_body.is_some() {
        add(
            "400",
            error(
                "The body is not valid JSON of the documented shape, or the `Content-Type` is not `application/json`.",
            ),
        );
        add(
            "413",
            error("The body is larger than `server.max_body_bytes`."),
        );
    }
    add(
        "500",
        error("An internal error; its cause is logged, never sent."),
    );
}

/// The schema of a JSON value that must not be `null` (a run's input, an
/// answer): any of the other JSON types.
pub(crate) fn non_null_json() -> Schema {
    let mut any = AnyOfBuilder::new();
    for t in [Type::String, Type::Number, Type::Boolean, Type::Object] {
        any = any.item(ObjectBuilder::new().schema_type(t));
    }
    // `items` spelled out: client generators (openapi-python-client)
    // refuse an array without one.
    let any_value = ObjectBuilder::new().schema_type(SchemaType::AnyValue);
    any = any.item(ArrayBuilder::new().items(any_value));
    Schema::AnyOf(any.build())
}

/// The schema of a Responses `input`: text, or a list of messages
/// (`{"role", "content"}`, content text or a list of text parts).
pub(crate) fn responses_input() -> Schema {
    let message = ObjectBuilder::new()
        .property("type", ObjectBuilder::new().schema_type(Type::String))
        .property("role", ObjectBuilder::new().schema_type(Type::String))
        .required("role")
        .property(
            "content",
            AnyOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::String))
                .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Object))),
        );
    let any = AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ArrayBuilder::new().items(message));
    Schema::AnyOf(any.build())
}

/// A response with an error body (schema `body`).
fn error(description: &str, body: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(body)))
                .build(),
        )
        .build()
}

/// Serves `spec` at `/openapi.json` and Swagger UI over it at `/docs`.
pub(crate) fn docs<S>(spec: utoipa::openapi::OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    SwaggerUi::new(DOCS_PATH).url(SPEC_PATH, spec).into()
}
