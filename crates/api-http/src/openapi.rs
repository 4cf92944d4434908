//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` attributes and
//! the DTOs' schemas. Types here exist only to describe JSON the handlers parse by hand
//! (search filters) or write from other types (errors, enums by name).
#![allow(dead_code)] // Schema-only types are never constructed.

use serde::Serialize;
use std::collections::BTreeMap;
use userd_domain as domain;
use userd_ports::{search, service};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::dto::*;
use crate::search::{ListDetails, SearchResponse};

/// A string enum whose values come from the list the rest of userd parses and writes,
/// so the document cannot drift from what is served.
macro_rules! enum_schema_of {
    ($name:ident, $doc:literal, $values:expr) => {
        #[doc = $doc]
        #[derive(Serialize)] // Only so that the schema-only structs around it derive it.
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($doc))
                    .enum_values(Some($values))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

/// A phone number as `Phone::new` accepts it.
#[derive(Serialize)] // Only so that the schema-only structs around it derive it.
pub(crate) struct PhoneNumber;

impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "1 to 20 characters: digits with an optional leading `+`.",
            ))
            .pattern(Some(domain::values::Phone::PATTERN))
            .into()
    }
}

impl ToSchema for PhoneNumber {}

enum_schema_of!(
    UserState,
    "A user's reported state.",
    domain::user::UserState::ALL.map(domain::user::UserState::as_str)
);
enum_schema_of!(
    OwnerType,
    "What owns a resource.",
    service::OwnerType::ALL.map(service::OwnerType::as_str)
);
enum_schema_of!(
    RoleName,
    "A role, held on the instance or in one organization.",
    domain::authz::Role::ALL.map(domain::authz::Role::as_str)
);
enum_schema_of!(
    TextFilterMethod,
    "How a text filter compares; the default is TEXT_FILTER_METHOD_EQUALS.",
    search::TextMethod::ALL.map(search::TextMethod::as_str)
);
enum_schema_of!(
    SortingColumn,
    "The order of search results; ties are broken by id.",
    search::SortColumn::ALL.map(search::SortColumn::as_str)
);

/// `google.rpc.ErrorInfo`.
#[derive(ToSchema, Serialize)]
pub(crate) struct ErrorInfo {
    #[serde(rename = "@type")]
    #[schema(example = "type.googleapis.com/google.rpc.ErrorInfo")]
    type_url: String,
    /// Stable and machine-readable, UPPER_SNAKE.
    #[schema(example = "USER_NOT_LOCKED")]
    reason: String,
    #[schema(example = "userd")]
    domain: String,
    /// Present when there is something to say.
    #[schema(value_type = Option<Object>)]
    metadata: Option<std::collections::HashMap<String, String>>,
}

/// `google.rpc.Status`: the body of every error.
#[derive(ToSchema, Serialize)]
pub(crate) struct Status {
    /// The gRPC status code.
    #[schema(example = 9)]
    code: i32,
    #[schema(example = "user is not locked")]
    message: String,
    details: Vec<ErrorInfo>,
}

#[derive(ToSchema, Serialize)]
pub(crate) struct Health {
    #[schema(example = "SERVING")]
    status: String,
}

// --- error responses ---------------------------------------------------------------

/// What each error status means on any route; every one carries a `google.rpc.Status`.
const ERROR_STATUSES: &[(&str, &str)] = &[
    (
        "400",
        "Invalid input, or refused by the state machine (code 3 or 9)",
    ),
    ("401", "No valid bearer token (code 16)"),
    (
        "403",
        "A role without the needed permission, or a target the caller does not cover (code 7)",
    ),
    ("404", "Not found, or not visible to the caller (code 5)"),
    (
        "409",
        "Already exists (code 6) or concurrent modification (code 10)",
    ),
    (
        "412",
        "If-Match did not match (code 9, ETAG_MISMATCH); nothing was written",
    ),
    ("413", "Body over 256 KiB (code 3)"),
    ("503", "The database is unavailable (code 14)"),
    ("default", "An error: google.rpc.Status"),
];

fn error_responses(statuses: &[&str]) -> BTreeMap<String, RefOr<Response>> {
    ERROR_STATUSES
        .iter()
        .filter(|(status, _)| *status == "default" || statuses.contains(status))
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Status")))
                        .build(),
                )
                .build();
            ((*status).to_owned(), RefOr::T(response))
        })
        .collect()
}

/// A named set of error responses, for the `responses(...)` of route attributes.
macro_rules! error_set {
    ($name:ident: $($status:literal),+) => {
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error_responses(&[$($status),+])
            }
        }
    };
}

error_set!(SearchErrors: "400", "401", "413", "503");
error_set!(ReadErrors: "400", "401", "403", "404", "503");
error_set!(CreateErrors: "400", "401", "403", "404", "409", "413", "503");
error_set!(WriteErrors: "400", "401", "403", "404", "409", "412", "413", "503");
error_set!(AdminErrors: "400", "401", "403", "404", "413", "503");

// --- search ------------------------------------------------------------------------

#[derive(ToSchema, Serialize)]
pub(crate) struct IdFilter {
    id: String,
    method: Option<TextFilterMethod>,
}

#[derive(ToSchema, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsernameFilter {
    username: String,
    is_organization_specific: Option<bool>,
    method: Option<TextFilterMethod>,
}

#[derive(ToSchema, Serialize)]
pub(crate) struct EmailFilter {
    address: String,
    method: Option<TextFilterMethod>,
}

#[derive(ToSchema, Serialize)]
pub(crate) struct PhoneFilter {
    number: String,
    method: Option<TextFilterMethod>,
}

#[derive(ToSchema, Serialize)]
pub(crate) struct StateFilter {
    state: UserState,
}

#[derive(ToSchema, Serialize)]
pub(crate) struct SchemaIdFilter {
    id: String,
}

#[derive(ToSchema, Serialize)]
pub(crate) struct FilterList {
    #[schema(no_recursion)]
    queries: Vec<Filter>,
}

#[derive(ToSchema, Serialize)]
pub(crate) struct NotFilter {
    #[schema(no_recursion)]
    query: Box<Filter>,
}

/// One filter: an object holding exactly one of these properties. Nested at most 10
/// deep, 100 filters in all.
#[derive(ToSchema, Serialize)]
#[serde(rename_all = "camelCase")]
#[schema(min_properties = 1, max_properties = 1)]
pub(crate) struct Filter {
    user_id_filter: Option<IdFilter>,
    organization_id_filter: Option<IdFilter>,
    username_filter: Option<UsernameFilter>,
    email_filter: Option<EmailFilter>,
    phone_filter: Option<PhoneFilter>,
    state_filter: Option<StateFilter>,
    schema_id_filter: Option<SchemaIdFilter>,
    and_filter: Option<FilterList>,
    or_filter: Option<FilterList>,
    not_filter: Option<NotFilter>,
}

#[derive(ToSchema, Serialize)]
pub(crate) struct ListQuery {
    /// A 64-bit integer, as a string or a number; default 0.
    #[schema(value_type = Option<String>, pattern = "^[0-9]+$")]
    offset: Option<String>,
    /// A 64-bit integer, as a string or a number; default 100, at most 1000.
    #[schema(value_type = Option<String>, pattern = "^[0-9]+$")]
    limit: Option<String>,
    desc: Option<bool>,
}

#[derive(ToSchema, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchRequestObject {
    query: Option<ListQuery>,
    sorting_column: Option<SortingColumn>,
    filters: Option<Vec<Filter>>,
}

/// Filters that must all hold: a bare array, or the object form.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub(crate) enum SearchBody {
    Filters(Vec<Filter>),
    Request(SearchRequestObject),
}

// --- the document ------------------------------------------------------------------

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal access token (userd_pat_...)."))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "userd",
        description = "A user-management service with a REST API shaped like ZITADEL's v3alpha user resources. \
                       Every error is a google.rpc.Status JSON body.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        crate::handlers::healthz,
        crate::handlers::readyz,
        crate::routes::metrics,
        crate::routes::openapi_json,
        crate::handlers::create_user,
        crate::handlers::search_users,
        crate::handlers::get_user,
        crate::handlers::patch_user,
        crate::handlers::delete_user,
        crate::handlers::lock_user,
        crate::handlers::unlock_user,
        crate::handlers::deactivate_user,
        crate::handlers::activate_user,
        crate::handlers::list_tokens,
        crate::handlers::create_token,
        crate::handlers::revoke_token,
        crate::handlers::create_organization,
        crate::handlers::get_organization,
        crate::handlers::set_org_member,
        crate::handlers::remove_org_member,
        crate::handlers::set_instance_member,
        crate::handlers::remove_instance_member,
        crate::login::set_password,
        crate::login::remove_password,
        crate::login::reset_password,
        crate::login::create_session,
        crate::login::set_session,
        crate::login::get_session,
        crate::login::delete_session,
        crate::login::get_lockout_settings,
        crate::login::set_lockout_settings,
        crate::login::reset_lockout_settings,
        crate::login::get_complexity_settings,
        crate::login::set_complexity_settings,
        crate::contact::set_email,
        crate::contact::verify_email,
        crate::contact::resend_email_code,
        crate::contact::set_phone,
        crate::contact::verify_phone,
        crate::contact::resend_phone_code,
    ),
    components(schemas(
        Status, ErrorInfo, Health, PhoneNumber, UserState, OwnerType, RoleName, TextFilterMethod, SortingColumn,
        Filter, IdFilter, UsernameFilter, EmailFilter, PhoneFilter, StateFilter, SchemaIdFilter,
        FilterList, NotFilter, ListQuery, SearchRequestObject, SearchBody, SearchResponse, ListDetails,
        CreateUserRequest, PatchUserRequest, ContactInput, EmailInput, PhoneInput, AuthenticatorsInput,
        UsernameInput, DetailsResponse, DetailsOut, OwnerOut, GetUserResponse, UserOut, SchemaOut,
        ContactOut, EmailOut, PhoneOut, AuthenticatorsOut, UsernameOut, CreateOrganizationRequest,
        CreateOrganizationResponse, GetOrganizationResponse, OrganizationOut, MemberRequest,
        CreateTokenRequest, CreateTokenResponse, ListTokensResponse, TokenOut,
        crate::login::SetPasswordRequest, crate::login::SetPasswordInput, crate::login::SessionRequest,
        crate::login::Checks, crate::login::CheckUser, crate::login::CheckPassword,
        crate::login::CreateSessionResponse, crate::login::SetSessionResponse, crate::login::GetSessionResponse,
        crate::login::SessionOut, crate::login::Factors, crate::login::UserFactor, crate::login::VerifiedAt,
        crate::login::RequestContext, crate::login::GetLockoutSettingsResponse, crate::login::LockoutSettingsOut,
        crate::login::SetLockoutSettingsRequest, crate::login::SettingsChangedResponse,
        crate::login::SettingsDetailsOut, crate::login::GetComplexitySettingsResponse,
        crate::login::ComplexitySettingsOut, crate::login::SetComplexitySettingsRequest,
        crate::dto::PasswordOut, crate::login::ResetPasswordRequest, crate::login::SendEmail,
        crate::login::ResetPasswordResponse,
        crate::dto::WrittenUserResponse,
        crate::contact::SetEmailRequest, crate::contact::SetEmailInput, crate::contact::SetPhoneRequest,
        crate::contact::SetPhoneInput, crate::contact::VerificationInput, crate::contact::SendCode,
        crate::contact::VerifyRequest, crate::contact::ResendRequest, crate::contact::ContactChangeResponse,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "users", description = "Users and their lifecycle"),
        (name = "administration", description = "Organizations, members and tokens"),
        (name = "passwords", description = "Password authenticators"),
        (name = "contact", description = "E-mail addresses and phone numbers, proven with codes"),
        (name = "sessions", description = "Login sessions: password checks and lockout"),
        (name = "settings", description = "Lockout and password complexity settings"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    ),
)]
pub struct ApiDoc;
