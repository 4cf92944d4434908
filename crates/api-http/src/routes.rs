//! The routes of the contract and the handlers behind them.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use userd_domain::authz::Caller;
use userd_domain::user::Command;
use userd_domain::values::{OrgId, UserId};
use userd_ports::ErrorKind;
use userd_ports::ServiceError;
use userd_ports::admin::AdminService;
use userd_ports::service::{Credentials, UserRef, UserService};

use crate::body::{parse_json, read_body};
use crate::dto::{
    CreateOrganizationRequest, CreateOrganizationResponse, CreateTokenRequest, CreateTokenResponse,
    CreateUserRequest, DetailsOut, DetailsResponse, EmptyRequest, GetOrganizationResponse,
    GetUserResponse, MemberRequest, OrganizationOut, PatchUserRequest, UserOut,
};
use crate::error::ApiError;
use crate::request_context::request_context;

type Service = web::Data<dyn UserService>;
type Admin = web::Data<dyn AdminService>;
type Answer = Result<HttpResponse, ApiError>;

const USERS: &str = "/resources/v3alpha/users";

/// Registers every route of the contract, with JSON errors for unknown paths and wrong
/// methods.
fn app_config(
    service: Arc<dyn UserService>,
    admin: Arc<dyn AdminService>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let allow = |methods: &'static str| {
            web::to(move |req: HttpRequest| async move {
                Err::<HttpResponse, _>(ApiError::method_not_allowed(req.method().as_str(), methods))
            })
        };
        cfg.app_data(web::Data::from(service))
            .app_data(web::Data::from(admin))
            .service(
                web::resource("/healthz")
                    .get(healthz)
                    .default_service(allow("GET")),
            )
            .service(
                web::resource("/readyz")
                    .get(readyz)
                    .default_service(allow("GET")),
            )
            .service(
                web::resource(USERS)
                    .post(create_user)
                    .default_service(allow("POST")),
            )
            .service(
                web::resource(format!("{USERS}/_search"))
                    .post(search_users)
                    .default_service(allow("POST")),
            )
            .service(
                web::resource(format!("{USERS}/{{id}}"))
                    .get(get_user)
                    .patch(patch_user)
                    .delete(delete_user)
                    .default_service(allow("GET, PATCH, DELETE")),
            )
            .service(action("_lock", lock_user, allow("POST")))
            .service(action("_unlock", unlock_user, allow("POST")))
            .service(action("_deactivate", deactivate_user, allow("POST")))
            .service(action("_activate", activate_user, allow("POST")))
            .service(
                web::resource(format!("{USERS}/{{id}}/pats"))
                    .post(create_token)
                    .default_service(allow("POST")),
            )
            .service(
                web::resource(format!("{USERS}/{{id}}/pats/{{pat_id}}"))
                    .delete(revoke_token)
                    .default_service(allow("DELETE")),
            )
            .service(
                web::resource("/v2/organizations")
                    .post(create_organization)
                    .default_service(allow("POST")),
            )
            .service(
                web::resource("/v2/organizations/{org_id}")
                    .get(get_organization)
                    .default_service(allow("GET")),
            )
            .service(
                web::resource("/v2/organizations/{org_id}/members")
                    .post(set_org_member)
                    .default_service(allow("POST")),
            )
            .service(
                web::resource("/v2/organizations/{org_id}/members/{user_id}")
                    .delete(remove_org_member)
                    .default_service(allow("DELETE")),
            )
            .service(
                web::resource("/v2/instance/members")
                    .post(set_instance_member)
                    .default_service(allow("POST")),
            )
            .default_service(web::to(|req: HttpRequest| async move {
                Err::<HttpResponse, _>(ApiError::route_not_found(req.path()))
            }));
    }
}

fn action<F, Fut>(name: &str, handler: F, wrong_method: actix_web::Route) -> actix_web::Resource
where
    F: actix_web::Handler<(HttpRequest, web::Path<String>, Payload, Service), Output = Fut>,
    Fut: actix_web::Responder + 'static,
{
    web::resource(format!("{USERS}/{{id}}/{name}"))
        .route(web::post().to(handler))
        .default_service(wrong_method)
}

/// The whole HTTP application: routes, request ids and logging, JSON errors everywhere.
pub fn app(
    service: Arc<dyn UserService>,
    admin: Arc<dyn AdminService>,
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
        .configure(app_config(service, admin))
}

/// Rewrites any error response that did not come from our handlers (actix's own) into
/// the contract's JSON form.
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

// --- helpers -----------------------------------------------------------------------

fn credentials(req: &HttpRequest) -> Credentials {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::None;
    };
    match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Credentials::Bearer(token.trim().to_owned())
        }
        _ => Credentials::None,
    }
}

async fn authenticate(req: &HttpRequest, service: &Service) -> Result<Caller, ApiError> {
    let caller = service.authenticate(&credentials(req)).await?;
    tracing::Span::current().record("user_id", caller.user_id.as_str());
    Ok(caller)
}

#[derive(Debug, Deserialize)]
struct OrganizationQuery {
    #[serde(rename = "organization.orgId")]
    org_id: Option<String>,
}

fn organization(req: &HttpRequest) -> Result<Option<OrgId>, ApiError> {
    let query = web::Query::<OrganizationQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid("INVALID_QUERY", format!("invalid query string: {e}")))?;
    query
        .into_inner()
        .org_id
        .map(OrgId::new)
        .transpose()
        .map_err(|e| ServiceError::invalid_field("organization.orgId", e).into())
}

fn user_ref(req: &HttpRequest, id: String) -> Result<UserRef, ApiError> {
    Ok(UserRef {
        id: UserId::new(id).map_err(|e| ApiError::from(ServiceError::invalid_field("id", e)))?,
        expected_org: organization(req)?,
    })
}

fn details(status: StatusCode, details: &userd_ports::service::ResourceDetails) -> HttpResponse {
    HttpResponse::build(status).json(DetailsResponse::from(details))
}

// --- handlers ----------------------------------------------------------------------

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"SERVING"}"#)
}

async fn readyz(service: Service) -> Answer {
    service.readiness().await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"SERVING"}"#))
}

async fn create_user(req: HttpRequest, payload: Payload, service: Service) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let org = organization(&req)?;
    let body = read_body(&req, payload).await?;
    let new_user = parse_json::<CreateUserRequest>(&body)?.into_new_user()?;
    let created = service.create_user(&caller, org, new_user).await?;
    Ok(details(StatusCode::CREATED, &created))
}

async fn search_users(req: HttpRequest, payload: Payload, service: Service) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let mut request = userd_ports::search::SearchRequest {
        organization: organization(&req)?,
        ..Default::default()
    };
    crate::search::apply_query_string(&mut request, req.query_string())?;
    let body = read_body(&req, payload).await?;
    crate::search::apply_body(&mut request, &body)?;
    let found = service.search_users(&caller, request).await?;
    Ok(HttpResponse::Ok().json(crate::search::SearchResponse::from(&found)))
}

async fn get_user(req: HttpRequest, id: web::Path<String>, service: Service) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let user = service.get_user(&caller, &target).await?;
    Ok(HttpResponse::Ok().json(GetUserResponse {
        user: UserOut::from(&user),
    }))
}

async fn patch_user(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let patch = parse_json::<PatchUserRequest>(&body)?.into_patch()?;
    let changed = service
        .execute(&caller, &target, Command::Patch(patch))
        .await?;
    Ok(details(StatusCode::OK, &changed))
}

async fn delete_user(req: HttpRequest, id: web::Path<String>, service: Service) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let deleted = service.execute(&caller, &target, Command::Delete).await?;
    Ok(details(StatusCode::OK, &deleted))
}

async fn state_change(
    req: HttpRequest,
    id: String,
    payload: Payload,
    service: Service,
    command: Command,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id)?;
    let body = read_body(&req, payload).await?;
    parse_json::<EmptyRequest>(&body)?;
    let changed = service.execute(&caller, &target, command).await?;
    Ok(details(StatusCode::OK, &changed))
}

async fn lock_user(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
) -> Answer {
    state_change(req, id.into_inner(), payload, service, Command::Lock).await
}

async fn unlock_user(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
) -> Answer {
    state_change(req, id.into_inner(), payload, service, Command::Unlock).await
}

async fn deactivate_user(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
) -> Answer {
    state_change(req, id.into_inner(), payload, service, Command::Deactivate).await
}

async fn activate_user(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
) -> Answer {
    state_change(req, id.into_inner(), payload, service, Command::Activate).await
}

// --- administration ----------------------------------------------------------------

fn org_id(text: String) -> Result<OrgId, ApiError> {
    OrgId::new(text).map_err(|e| ServiceError::invalid_field("orgId", e).into())
}

async fn create_token(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let expiration = parse_json::<CreateTokenRequest>(&body)?.expiration()?;
    let issued = admin.create_token(&caller, &target, expiration).await?;
    Ok(HttpResponse::Created().json(CreateTokenResponse {
        details: (&issued.details).into(),
        personal_access_token_id: issued.token_id,
        personal_access_token: issued.token.expose().to_owned(),
    }))
}

async fn revoke_token(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let (id, token_id) = path.into_inner();
    let target = user_ref(&req, id)?;
    let revoked = admin.revoke_token(&caller, &target, &token_id).await?;
    Ok(details(StatusCode::OK, &revoked))
}

async fn create_organization(
    req: HttpRequest,
    payload: Payload,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let body = read_body(&req, payload).await?;
    let request = parse_json::<CreateOrganizationRequest>(&body)?;
    let created = admin
        .create_organization(&caller, request.name.as_deref().unwrap_or_default())
        .await?;
    Ok(HttpResponse::Created().json(CreateOrganizationResponse {
        organization_id: created.id.clone(),
        details: (&created).into(),
    }))
}

async fn get_organization(
    req: HttpRequest,
    id: web::Path<String>,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let org = org_id(id.into_inner())?;
    let found = admin.get_organization(&caller, &org).await?;
    Ok(HttpResponse::Ok().json(GetOrganizationResponse {
        organization: OrganizationOut {
            details: DetailsOut::from(&found.details),
            name: found.name,
        },
    }))
}

async fn set_org_member(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let org = org_id(id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let (user, roles) = parse_json::<MemberRequest>(&body)?.into_parts()?;
    let member = admin.set_org_member(&caller, &org, &user, &roles).await?;
    Ok(details(StatusCode::OK, &member))
}

async fn remove_org_member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let (org, user) = path.into_inner();
    let org = org_id(org)?;
    let user =
        UserId::new(user).map_err(|e| ApiError::from(ServiceError::invalid_field("userId", e)))?;
    let removed = admin.remove_org_member(&caller, &org, &user).await?;
    Ok(details(StatusCode::OK, &removed))
}

async fn set_instance_member(
    req: HttpRequest,
    payload: Payload,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let body = read_body(&req, payload).await?;
    let (user, roles) = parse_json::<MemberRequest>(&body)?.into_parts()?;
    let member = admin.set_instance_member(&caller, &user, &roles).await?;
    Ok(details(StatusCode::OK, &member))
}
