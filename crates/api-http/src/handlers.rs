//! The handlers behind the routes: each authenticates, reads and validates its input,
//! calls a use case, and shapes the answer. The `#[utoipa::path]` attributes describe
//! them in the OpenAPI document.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use userd_domain::authz::Caller;
use userd_domain::user::Command;
use userd_domain::values::{OrgId, UserId};
use userd_ports::ServiceError;
use userd_ports::admin::AdminService;
use userd_ports::service::{Credentials, IfMatch, UserRef, UserService};

use crate::body::{parse_json, read_body};
use crate::dto::{
    CreateOrganizationRequest, CreateOrganizationResponse, CreateTokenRequest, CreateTokenResponse,
    CreateUserRequest, DetailsOut, DetailsResponse, EmptyRequest, GetOrganizationResponse,
    GetUserResponse, ListTokensResponse, MemberRequest, OrganizationOut, PatchUserRequest, UserOut,
};
use crate::error::ApiError;

pub(crate) type Service = web::Data<dyn UserService>;
pub(crate) type Admin = web::Data<dyn AdminService>;
pub(crate) type Answer = Result<HttpResponse, ApiError>;

// --- helpers -----------------------------------------------------------------------

fn credentials(req: &HttpRequest) -> Credentials {
    let value = req.headers().get(header::AUTHORIZATION);
    Credentials::from_authorization(value.and_then(|v| v.to_str().ok()))
}

pub(crate) async fn authenticate(req: &HttpRequest, service: &Service) -> Result<Caller, ApiError> {
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

pub(crate) fn user_ref(req: &HttpRequest, id: String) -> Result<UserRef, ApiError> {
    Ok(UserRef {
        id: UserId::new(id).map_err(|e| ApiError::from(ServiceError::invalid_field("id", e)))?,
        expected_org: organization(req)?,
        if_match: if_match(req),
    })
}

/// `If-Match`: `*`, or strong entity tags. A weak tag (`W/"3"`) or anything userd could
/// not have made never matches, as RFC 9110 asks of If-Match.
fn if_match(req: &HttpRequest) -> Option<IfMatch> {
    let tags: Vec<&str> = req
        .headers()
        .get_all(header::IF_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .collect();
    if tags.is_empty() {
        return None;
    }
    if tags.contains(&"*") {
        return Some(IfMatch::Any);
    }
    Some(IfMatch::Versions(
        tags.iter()
            .filter_map(|tag| tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok())
            .collect(),
    ))
}

/// The entity tag of a user at a version.
pub(crate) fn etag(version: u64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

pub(crate) fn details(
    status: StatusCode,
    details: &userd_ports::service::ResourceDetails,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    // Users carry a version (their event sequence); members and tokens do not.
    if details.sequence > 0 {
        response.insert_header(etag(details.sequence));
    }
    response.json(DetailsResponse::from(details))
}

/// A user created or changed, with its version and any codes asked for.
fn written(status: StatusCode, written: &userd_ports::service::WrittenUser) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(etag(written.details.sequence))
        .json(crate::dto::WrittenUserResponse::from(written))
}

// --- handlers ----------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The process runs", body = crate::openapi::Health),
    ),
)]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"SERVING"}"#)
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = crate::openapi::Health),
        (status = 503, description = "The database does not answer (code 14)", body = crate::openapi::Status),
    ),
)]
pub(crate) async fn readyz(service: Service) -> Answer {
    service.readiness().await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"SERVING"}"#))
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users",
    tag = "users",
    params(
        (
            "organization.orgId" = Option<String>,
            Query,
            description = "The organization to create the user in; by default the one of the caller.",
        ),
    ),
    request_body(content = CreateUserRequest, content_type = "application/json"),
    responses(
        (
            status = 201,
            description = "Created",
            body = crate::dto::WrittenUserResponse,
            headers(("ETag" = String, description = "The version of the user (its event sequence), quoted")),
        ),
        crate::openapi::CreateErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create_user(req: HttpRequest, payload: Payload, service: Service) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let org = organization(&req)?;
    let body = read_body(&req, payload).await?;
    let new_user = parse_json::<CreateUserRequest>(&body)?.into_new_user()?;
    let created = service.create_user(&caller, org, new_user).await?;
    Ok(written(StatusCode::CREATED, &created))
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users/_search",
    tag = "users",
    params(
        ("organization.orgId" = Option<String>, Query, description = "Only users of this organization."),
        ("query.offset" = Option<String>, Query, description = "Default 0"),
        ("query.limit" = Option<String>, Query, description = "Default 100, at most 1000"),
        ("query.desc" = Option<bool>, Query),
        (
            "sortingColumn" = Option<crate::openapi::SortingColumn>,
            Query,
            description = "Default FIELD_NAME_CREATION_DATE; ties are broken by id",
        ),
    ),
    request_body(content = crate::openapi::SearchBody, content_type = "application/json"),
    responses(
        (status = 200, description = "One page of the users the caller may read", body = crate::search::SearchResponse),
        crate::openapi::SearchErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn search_users(req: HttpRequest, payload: Payload, service: Service) -> Answer {
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

#[utoipa::path(
    get,
    path = "/resources/v3alpha/users/{id}",
    tag = "users",
    params(
        ("id" = String, Path, description = "The id of the user, 1 to 200 characters."),
        (
            "organization.orgId" = Option<String>,
            Query,
            description = "Expect the user in this organization; a user of another one is then not found.",
        ),
    ),
    responses(
        (
            status = 200,
            description = "The user",
            body = GetUserResponse,
            headers(("ETag" = String, description = "The version of the user (its event sequence), quoted")),
        ),
        crate::openapi::ReadErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_user(req: HttpRequest, id: web::Path<String>, service: Service) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let user = service.get_user(&caller, &target).await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(user.sequence))
        .json(GetUserResponse {
            user: UserOut::from(&user),
        }))
}

#[utoipa::path(
    patch,
    path = "/resources/v3alpha/users/{id}",
    tag = "users",
    params(
        ("id" = String, Path, description = "The id of the user, 1 to 200 characters."),
        (
            "If-Match" = Option<String>,
            Header,
            description = "Write only if the user is still at this version: an ETag from a previous \
                           answer, or *. Otherwise 412 (code 9, ETAG_MISMATCH) and nothing is written.",
        ),
        (
            "organization.orgId" = Option<String>,
            Query,
            description = "Expect the user in this organization; a user of another one is then not found.",
        ),
    ),
    request_body(content = PatchUserRequest, content_type = "application/json"),
    responses(
        (
            status = 200,
            description = "Changed, or nothing to change",
            body = crate::dto::WrittenUserResponse,
            headers(("ETag" = String, description = "The version of the user (its event sequence), quoted")),
        ),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn patch_user(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let (patch, codes) = parse_json::<PatchUserRequest>(&body)?.into_patch()?;
    let changed = service.patch_user(&caller, &target, patch, codes).await?;
    Ok(written(StatusCode::OK, &changed))
}

#[utoipa::path(
    delete,
    path = "/resources/v3alpha/users/{id}",
    tag = "users",
    params(
        ("id" = String, Path, description = "The id of the user, 1 to 200 characters."),
        (
            "If-Match" = Option<String>,
            Header,
            description = "Write only if the user is still at this version: an ETag from a previous \
                           answer, or *. Otherwise 412 (code 9, ETAG_MISMATCH) and nothing is written.",
        ),
        (
            "organization.orgId" = Option<String>,
            Query,
            description = "Expect the user in this organization; a user of another one is then not found.",
        ),
    ),
    responses(
        (
            status = 200,
            description = "Deleted",
            body = DetailsResponse,
            headers(("ETag" = String, description = "The version of the user (its event sequence), quoted")),
        ),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete_user(
    req: HttpRequest,
    id: web::Path<String>,
    service: Service,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let deleted = service.execute(&caller, &target, Command::Delete).await?;
    Ok(details(StatusCode::OK, &deleted))
}

pub(crate) async fn state_change(
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

/// A route that runs one state-machine command on a user: the four `_action` routes
/// differ only in their path, their command and what their answer means.
macro_rules! state_change_route {
    ($handler:ident, $path:tt, $command:expr, $outcome:tt) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = "users",
            params(
                ("id" = String, Path, description = "The id of the user, 1 to 200 characters."),
                (
                    "If-Match" = Option<String>,
                    Header,
                    description = "Write only if the user is still at this version: an ETag from a \
                                   previous answer, or *. Otherwise 412 (code 9, ETAG_MISMATCH) and \
                                   nothing is written.",
                ),
                (
                    "organization.orgId" = Option<String>,
                    Query,
                    description = "Expect the user in this organization; a user of another one is \
                                   then not found.",
                ),
            ),
            request_body(
                content = Option<Object>,
                description = "None, or any JSON object (its fields are ignored)",
                content_type = "application/json",
            ),
            responses(
                (
                    status = 200,
                    description = $outcome,
                    body = DetailsResponse,
                    headers((
                        "ETag" = String,
                        description = "The version of the user (its event sequence), quoted"
                    )),
                ),
                crate::openapi::WriteErrors,
            ),
            security(("bearer" = [])),
        )]
        pub(crate) async fn $handler(
            req: HttpRequest,
            id: web::Path<String>,
            payload: Payload,
            service: Service,
        ) -> Answer {
            state_change(req, id.into_inner(), payload, service, $command).await
        }
    };
}

state_change_route!(
    lock_user,
    "/resources/v3alpha/users/{id}/_lock",
    Command::Lock,
    "Locked; refused (code 9, USER_ALREADY_LOCKED) when already locked"
);
state_change_route!(
    unlock_user,
    "/resources/v3alpha/users/{id}/_unlock",
    Command::Unlock,
    "Unlocked; refused (code 9, USER_NOT_LOCKED) when not locked"
);
state_change_route!(
    deactivate_user,
    "/resources/v3alpha/users/{id}/_deactivate",
    Command::Deactivate,
    "Deactivated; refused (code 9, USER_ALREADY_INACTIVE) unless active"
);
state_change_route!(
    activate_user,
    "/resources/v3alpha/users/{id}/_activate",
    Command::Activate,
    "Activated; refused (code 9, USER_NOT_INACTIVE) unless inactive"
);

// --- administration ----------------------------------------------------------------

fn org_id(text: String) -> Result<OrgId, ApiError> {
    OrgId::new(text).map_err(|e| ServiceError::invalid_field("orgId", e).into())
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users/{id}/pats",
    tag = "administration",
    params(
        ("id" = String, Path, description = "The id of the user, 1 to 200 characters."),
        (
            "organization.orgId" = Option<String>,
            Query,
            description = "Expect the user in this organization; a user of another one is then not found.",
        ),
    ),
    request_body(content = CreateTokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The token, shown only this once", body = CreateTokenResponse),
        crate::openapi::AdminErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create_token(
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

#[utoipa::path(
    get,
    path = "/resources/v3alpha/users/{id}/pats",
    tag = "administration",
    params(
        ("id" = String, Path, description = "The id of the user, 1 to 200 characters."),
        ("organization.orgId" = Option<String>, Query, description = "Expect the user in this organization."),
    ),
    responses(
        (
            status = 200,
            description = "The user's tokens that are not revoked (never their secrets)",
            body = ListTokensResponse,
        ),
        crate::openapi::ReadErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list_tokens(
    req: HttpRequest,
    id: web::Path<String>,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let tokens = admin.list_tokens(&caller, &target).await?;
    Ok(HttpResponse::Ok().json(ListTokensResponse::from(tokens.as_slice())))
}

#[utoipa::path(
    delete,
    path = "/resources/v3alpha/users/{id}/pats/{patId}",
    tag = "administration",
    params(
        ("id" = String, Path, description = "The id of the user, 1 to 200 characters."),
        ("patId" = String, Path),
        (
            "organization.orgId" = Option<String>,
            Query,
            description = "Expect the user in this organization; a user of another one is then not found.",
        ),
    ),
    responses(
        (status = 200, description = "Revoked", body = DetailsResponse),
        crate::openapi::AdminErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn revoke_token(
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

#[utoipa::path(
    post,
    path = "/v2/organizations",
    tag = "administration",
    request_body(content = CreateOrganizationRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created (IAM_OWNER only)", body = CreateOrganizationResponse),
        crate::openapi::AdminErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create_organization(
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

#[utoipa::path(
    get,
    path = "/v2/organizations/{orgId}",
    tag = "administration",
    params(("orgId" = String, Path)),
    responses(
        (status = 200, description = "The organization", body = GetOrganizationResponse),
        crate::openapi::ReadErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get_organization(
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

#[utoipa::path(
    post,
    path = "/v2/organizations/{orgId}/members",
    tag = "administration",
    params(("orgId" = String, Path)),
    request_body(content = MemberRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The member now holds exactly these roles", body = DetailsResponse),
        crate::openapi::AdminErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_org_member(
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

#[utoipa::path(
    delete,
    path = "/v2/organizations/{orgId}/members/{userId}",
    tag = "administration",
    params(("orgId" = String, Path), ("userId" = String, Path)),
    responses(
        (status = 200, description = "Removed", body = DetailsResponse),
        crate::openapi::AdminErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn remove_org_member(
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

#[utoipa::path(
    post,
    path = "/v2/instance/members",
    tag = "administration",
    request_body(content = MemberRequest, content_type = "application/json"),
    responses(
        (
            status = 200,
            description = "The member now holds exactly these instance roles (IAM_OWNER only)",
            body = DetailsResponse,
        ),
        crate::openapi::AdminErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_instance_member(
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

#[utoipa::path(
    delete,
    path = "/v2/instance/members/{userId}",
    tag = "administration",
    params(("userId" = String, Path)),
    responses(
        (
            status = 200,
            description = "The user holds no instance role any more (IAM_OWNER only)",
            body = DetailsResponse,
        ),
        crate::openapi::AdminErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn remove_instance_member(
    req: HttpRequest,
    user: web::Path<String>,
    service: Service,
    admin: Admin,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let user = UserId::new(user.into_inner())
        .map_err(|e| ApiError::from(ServiceError::invalid_field("userId", e)))?;
    let removed = admin.remove_instance_member(&caller, &user).await?;
    Ok(details(StatusCode::OK, &removed))
}
