//! The route table and the application built from it.
//!
//! Every route is one row of [`routes`]: the same rows register the handlers, give each
//! path its `405` answer with an `Allow` header, and are compared with the OpenAPI
//! document by a test, so the document cannot drift from what is served.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, ContentType};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use userd_ports::ErrorKind;
use userd_ports::admin::AdminService;
use userd_ports::contact::ContactService;
use userd_ports::login::LoginService;
use userd_ports::service::UserService;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::contact::*;
use crate::error::ApiError;
use crate::handlers::*;
use crate::login::*;
use crate::observability::Metrics;
use crate::openapi::ApiDoc;
use crate::request_context::{RequestSettings, RouteTemplate, deadline, request_context};

/// What the application serves, and how.
#[derive(Clone)]
pub struct Services {
    pub users: Arc<dyn UserService>,
    pub admin: Arc<dyn AdminService>,
    pub login: Arc<dyn LoginService>,
    pub contact: Arc<dyn ContactService>,
    pub metrics: Arc<Metrics>,
    /// A request still running after this is answered 504 (code 4).
    pub request_timeout: Duration,
}

impl Services {
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

    pub fn new(
        users: Arc<dyn UserService>,
        admin: Arc<dyn AdminService>,
        login: Arc<dyn LoginService>,
        contact: Arc<dyn ContactService>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Services {
            users,
            admin,
            login,
            contact,
            metrics,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// One served route: method, path template (actix and OpenAPI spell them alike), handler.
pub(crate) struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    route: fn() -> actix_web::Route,
}

const fn spec(method: Method, path: &'static str, route: fn() -> actix_web::Route) -> RouteSpec {
    RouteSpec {
        method,
        path,
        route,
    }
}

/// Every route userd serves. Order matters where templates overlap: `_search` before
/// `{id}`.
pub(crate) fn routes() -> Vec<RouteSpec> {
    use Method as M;
    vec![
        spec(M::GET, "/healthz", || web::get().to(healthz)),
        spec(M::GET, "/readyz", || web::get().to(readyz)),
        spec(M::GET, "/metrics", || web::get().to(metrics)),
        spec(M::GET, "/openapi.json", || web::get().to(openapi_json)),
        spec(M::POST, "/resources/v3alpha/users", || {
            web::post().to(create_user)
        }),
        spec(M::POST, "/resources/v3alpha/users/_search", || {
            web::post().to(search_users)
        }),
        spec(M::GET, "/resources/v3alpha/users/{id}", || {
            web::get().to(get_user)
        }),
        spec(M::PATCH, "/resources/v3alpha/users/{id}", || {
            web::patch().to(patch_user)
        }),
        spec(M::DELETE, "/resources/v3alpha/users/{id}", || {
            web::delete().to(delete_user)
        }),
        spec(M::POST, "/resources/v3alpha/users/{id}/_lock", || {
            web::post().to(lock_user)
        }),
        spec(M::POST, "/resources/v3alpha/users/{id}/_unlock", || {
            web::post().to(unlock_user)
        }),
        spec(M::POST, "/resources/v3alpha/users/{id}/_deactivate", || {
            web::post().to(deactivate_user)
        }),
        spec(M::POST, "/resources/v3alpha/users/{id}/_activate", || {
            web::post().to(activate_user)
        }),
        spec(M::POST, "/resources/v3alpha/users/{id}/password", || {
            web::post().to(set_password)
        }),
        spec(M::DELETE, "/resources/v3alpha/users/{id}/password", || {
            web::delete().to(remove_password)
        }),
        spec(
            M::POST,
            "/resources/v3alpha/users/{id}/password/_reset",
            || web::post().to(reset_password),
        ),
        spec(M::PUT, "/resources/v3alpha/users/{id}/email", || {
            web::put().to(set_email)
        }),
        spec(
            M::POST,
            "/resources/v3alpha/users/{id}/email/_verify",
            || web::post().to(verify_email),
        ),
        spec(
            M::POST,
            "/resources/v3alpha/users/{id}/email/_resend",
            || web::post().to(resend_email_code),
        ),
        spec(M::PUT, "/resources/v3alpha/users/{id}/phone", || {
            web::put().to(set_phone)
        }),
        spec(
            M::POST,
            "/resources/v3alpha/users/{id}/phone/_verify",
            || web::post().to(verify_phone),
        ),
        spec(
            M::POST,
            "/resources/v3alpha/users/{id}/phone/_resend",
            || web::post().to(resend_phone_code),
        ),
        spec(M::GET, "/resources/v3alpha/users/{id}/pats", || {
            web::get().to(list_tokens)
        }),
        spec(M::POST, "/resources/v3alpha/users/{id}/pats", || {
            web::post().to(create_token)
        }),
        spec(
            M::DELETE,
            "/resources/v3alpha/users/{id}/pats/{patId}",
            || web::delete().to(revoke_token),
        ),
        spec(M::POST, "/v2/organizations", || {
            web::post().to(create_organization)
        }),
        spec(M::GET, "/v2/organizations/{orgId}", || {
            web::get().to(get_organization)
        }),
        spec(M::POST, "/v2/organizations/{orgId}/members", || {
            web::post().to(set_org_member)
        }),
        spec(
            M::DELETE,
            "/v2/organizations/{orgId}/members/{userId}",
            || web::delete().to(remove_org_member),
        ),
        spec(M::POST, "/v2/sessions", || web::post().to(create_session)),
        spec(M::GET, "/v2/sessions/{sessionId}", || {
            web::get().to(get_session)
        }),
        spec(M::PATCH, "/v2/sessions/{sessionId}", || {
            web::patch().to(set_session)
        }),
        spec(M::DELETE, "/v2/sessions/{sessionId}", || {
            web::delete().to(delete_session)
        }),
        spec(M::GET, "/v2/settings/lockout", || {
            web::get().to(get_lockout_settings)
        }),
        spec(M::PUT, "/v2/settings/lockout", || {
            web::put().to(set_lockout_settings)
        }),
        spec(M::DELETE, "/v2/settings/lockout", || {
            web::delete().to(reset_lockout_settings)
        }),
        spec(M::GET, "/v2/settings/password/complexity", || {
            web::get().to(get_complexity_settings)
        }),
        spec(M::PUT, "/v2/settings/password/complexity", || {
            web::put().to(set_complexity_settings)
        }),
        spec(M::POST, "/v2/instance/members", || {
            web::post().to(set_instance_member)
        }),
        spec(M::DELETE, "/v2/instance/members/{userId}", || {
            web::delete().to(remove_instance_member)
        }),
    ]
}

/// The (method, path) pairs served, for the OpenAPI coverage test.
#[doc(hidden)]
pub fn served_routes() -> Vec<(String, String)> {
    routes()
        .into_iter()
        .map(|r| (r.method.as_str().to_lowercase(), r.path.to_owned()))
        .collect()
}

fn configure(services: Services) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(services.users))
            .app_data(web::Data::from(services.admin))
            .app_data(web::Data::from(services.login))
            .app_data(web::Data::from(services.contact))
            .app_data(web::Data::from(Arc::clone(&services.metrics)))
            .app_data(web::Data::new(RequestSettings {
                metrics: services.metrics,
                timeout: services.request_timeout,
            }));
        let table = routes();
        let mut paths: Vec<&'static str> = Vec::new();
        for row in &table {
            if !paths.contains(&row.path) {
                paths.push(row.path);
            }
        }
        for path in paths {
            let rows: Vec<&RouteSpec> = table.iter().filter(|r| r.path == path).collect();
            let allow = rows
                .iter()
                .map(|r| r.method.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut resource = web::resource(path);
            for row in rows {
                resource = resource.route((row.route)());
            }
            let resource = resource.default_service(web::to(move |req: HttpRequest| {
                let allow = allow.clone();
                async move {
                    Err::<HttpResponse, _>(ApiError::method_not_allowed(
                        req.method().as_str(),
                        &allow,
                    ))
                }
            }));
            cfg.service(
                resource
                    .app_data(RouteTemplate(path))
                    .wrap(from_fn(deadline)),
            );
        }
        // The interactive documentation; its assets are compiled into the binary.
        cfg.service(web::resource("/docs").to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, "/docs/"))
                .finish()
        }))
        .service(
            SwaggerUi::new("/docs/{_:.*}")
                .config(utoipa_swagger_ui::Config::new(["/openapi.json"])),
        )
        .default_service(web::to(|req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::route_not_found(req.path()))
        }));
    }
}

/// The whole HTTP application: routes, request ids, logging, metrics and timeouts, and
/// JSON errors everywhere.
pub fn app(
    services: Services,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .wrap(json_error_fallback())
        .wrap(from_fn(request_context))
        .app_data(web::PathConfig::default().error_handler(|error, _| {
            ApiError::invalid("INVALID_PATH", format!("invalid path: {error}")).into()
        }))
        .configure(configure(services))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
    ),
)]
pub(crate) async fn metrics(metrics: web::Data<Metrics>) -> Answer {
    let text = metrics.render().map_err(|e| {
        tracing::error!(error = %e, "cannot render metrics");
        ApiError::new(ErrorKind::Internal, "INTERNAL", "internal error")
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This document", body = Object),
    ),
)]
pub(crate) async fn openapi_json() -> Answer {
    let document = ApiDoc::openapi().to_json().map_err(|e| {
        tracing::error!(error = %e, "cannot render the OpenAPI document");
        ApiError::new(ErrorKind::Internal, "INTERNAL", "internal error")
    })?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document))
}

/// Rewrites any error response that did not come from our handlers (actix's own) into
/// the JSON form of docs/api.md.
fn json_error_fallback<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let error = match status {
            StatusCode::NOT_FOUND => ApiError::route_not_found(res.request().path()),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(crate::MAX_BODY_BYTES),
            s if s.is_client_error() => ApiError::invalid(
                "BAD_REQUEST",
                format!(
                    "the request was refused: {}",
                    s.canonical_reason().unwrap_or("bad request")
                ),
            ),
            _ => ApiError::new(ErrorKind::Internal, "INTERNAL", "internal error"),
        };
        let mut response = error.error_response();
        // Keep the status actix chose (for instance 408 or 431).
        *response.status_mut() = status;
        let (req, _) = res.into_parts();
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, response).map_into_right_body::<B>(),
        ))
    })
}
