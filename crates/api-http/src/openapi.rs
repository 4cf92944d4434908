//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` attributes and
//! the DTOs' schemas. Types here exist only to describe JSON the handlers parse by hand
//! (search filters) or write from other types (errors, enums by name).
#![allow(dead_code)] // Schema-only types are never constructed.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::dto::*;
use crate::search::{ListDetails, SearchResponse};

/// A user's reported state.
#[derive(ToSchema, Serialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub(crate) enum UserState {
    USER_STATE_ACTIVE,
    USER_STATE_INACTIVE,
    USER_STATE_LOCKED,
    USER_STATE_DELETED,
}

#[derive(ToSchema, Serialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub(crate) enum OwnerType {
    OWNER_TYPE_SYSTEM,
    OWNER_TYPE_INSTANCE,
    OWNER_TYPE_ORG,
}

#[derive(ToSchema, Serialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub(crate) enum RoleName {
    IAM_OWNER,
    IAM_USER_MANAGER,
    ORG_OWNER,
    ORG_USER_MANAGER,
    ORG_USER_VIEWER,
}

#[derive(ToSchema, Serialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub(crate) enum TextFilterMethod {
    TEXT_FILTER_METHOD_EQUALS,
    TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE,
    TEXT_FILTER_METHOD_STARTS_WITH,
    TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE,
    TEXT_FILTER_METHOD_CONTAINS,
    TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE,
    TEXT_FILTER_METHOD_ENDS_WITH,
    TEXT_FILTER_METHOD_ENDS_WITH_IGNORE_CASE,
}

#[derive(ToSchema, Serialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub(crate) enum SortingColumn {
    FIELD_NAME_ID,
    FIELD_NAME_CREATION_DATE,
    FIELD_NAME_CHANGE_DATE,
    FIELD_NAME_EMAIL,
    FIELD_NAME_PHONE,
    FIELD_NAME_STATE,
    FIELD_NAME_SCHEMA_ID,
}

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
    ),
    components(schemas(
        Status, ErrorInfo, Health, UserState, OwnerType, RoleName, TextFilterMethod, SortingColumn,
        Filter, IdFilter, UsernameFilter, EmailFilter, PhoneFilter, StateFilter, SchemaIdFilter,
        FilterList, NotFilter, ListQuery, SearchRequestObject, SearchBody, SearchResponse, ListDetails,
        CreateUserRequest, PatchUserRequest, ContactInput, EmailInput, PhoneInput, AuthenticatorsInput,
        UsernameInput, DetailsResponse, DetailsOut, OwnerOut, GetUserResponse, UserOut, SchemaOut,
        ContactOut, EmailOut, PhoneOut, AuthenticatorsOut, UsernameOut, CreateOrganizationRequest,
        CreateOrganizationResponse, GetOrganizationResponse, OrganizationOut, MemberRequest,
        CreateTokenRequest, CreateTokenResponse, ListTokensResponse, TokenOut,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "users", description = "Users and their lifecycle"),
        (name = "administration", description = "Organizations, members and tokens"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    ),
)]
pub struct ApiDoc;
