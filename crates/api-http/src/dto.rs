//! The JSON shapes of docs/api.md (gRPC-gateway style): lowerCamelCase, empty fields
//! omitted, enums by name, timestamps in RFC 3339 UTC.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use userd_domain::Timestamp;
use userd_domain::authz::Role;
use userd_domain::user::{Contact, EmailContact, PhoneContact, User, UserPatch};
use userd_domain::values::{Email, Phone, SchemaId, UserData, UserId, Username};
use userd_ports::ServiceError;
use userd_ports::contact::CodeDelivery;
use userd_ports::repository::TokenRecord;
use userd_ports::service::{CodeRequests, NewUser, NewUsername, ResourceDetails, WrittenUser};
use utoipa::ToSchema;

// --- requests ----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateUserRequest {
    /// 1 to 200 characters; the server makes a decimal id when absent.
    #[schema(min_length = 1, max_length = 200)]
    user_id: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    schema_id: Option<String>,
    /// Any JSON object, at most 64 KiB.
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
    contact: Option<ContactInput>,
    authenticators: Option<AuthenticatorsInput>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PatchUserRequest {
    #[schema(min_length = 1, max_length = 200)]
    schema_id: Option<String>,
    /// Replaces the whole object when present.
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
    contact: Option<ContactInput>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ContactInput {
    email: Option<EmailInput>,
    phone: Option<PhoneInput>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmailInput {
    /// A syntactically valid address, at most 200 characters.
    #[schema(format = Email, max_length = 200)]
    address: Option<String>,
    is_verified: Option<bool>,
    /// userd sends a code to the address (needs a configured notifier).
    send_code: Option<crate::contact::SendCode>,
    /// `{}`: the code comes back in the answer as `emailCode`.
    #[schema(value_type = Option<Object>)]
    return_code: Option<Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PhoneInput {
    #[schema(value_type = Option<crate::openapi::PhoneNumber>)]
    number: Option<String>,
    is_verified: Option<bool>,
    /// userd sends a code by SMS (needs a configured notifier).
    send_code: Option<crate::contact::SendCode>,
    /// `{}`: the code comes back in the answer as `phoneCode`.
    #[schema(value_type = Option<Object>)]
    return_code: Option<Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct AuthenticatorsInput {
    usernames: Option<Vec<UsernameInput>>,
    password: Option<crate::login::SetPasswordInput>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsernameInput {
    #[schema(min_length = 1, max_length = 200)]
    username: Option<String>,
    is_organization_specific: Option<bool>,
}

/// The body of the lock, unlock, deactivate and activate routes: none, or an object
/// whose fields are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct EmptyRequest {}

/// The code an address asks for: `sendCode`, `returnCode` or none, never with
/// `isVerified: true`.
fn code_request(
    field: &str,
    send_code: &mut Option<crate::contact::SendCode>,
    return_code: &mut Option<Value>,
    is_verified: Option<bool>,
) -> Result<Option<CodeDelivery>, ServiceError> {
    let refuse = |message: &str| ServiceError::InvalidArgument {
        reason: "INVALID_ARGUMENT",
        message: format!("{field}: {message}"),
        field: Some(field.to_owned()),
    };
    match (send_code.take(), return_code.take()) {
        (Some(_), Some(_)) => Err(refuse("give sendCode or returnCode, not both")),
        (Some(_), None) | (None, Some(_)) if is_verified == Some(true) => {
            Err(refuse("a verified address needs no code"))
        }
        (Some(send), None) => Ok(Some(CodeDelivery::Send {
            url_template: send.url_template,
        })),
        (None, Some(_)) => Ok(Some(CodeDelivery::Return)),
        (None, None) => Ok(None),
    }
}

impl ContactInput {
    /// The codes the addresses ask for; takes them out of the input.
    fn code_requests(&mut self) -> Result<CodeRequests, ServiceError> {
        Ok(CodeRequests {
            email: match &mut self.email {
                Some(e) => code_request(
                    "contact.email",
                    &mut e.send_code,
                    &mut e.return_code,
                    e.is_verified,
                )?,
                None => None,
            },
            phone: match &mut self.phone {
                Some(p) => code_request(
                    "contact.phone",
                    &mut p.send_code,
                    &mut p.return_code,
                    p.is_verified,
                )?,
                None => None,
            },
        })
    }
}

fn email_of(input: EmailInput) -> Result<EmailContact, ServiceError> {
    const FIELD: &str = "contact.email.address";
    let address = input.address.unwrap_or_default();
    Ok(EmailContact {
        address: Email::new(address).map_err(|e| ServiceError::invalid_field(FIELD, e))?,
        verified: input.is_verified.unwrap_or(false),
    })
}

fn phone_of(input: PhoneInput) -> Result<PhoneContact, ServiceError> {
    const FIELD: &str = "contact.phone.number";
    let number = input.number.unwrap_or_default();
    Ok(PhoneContact {
        number: Phone::new(number).map_err(|e| ServiceError::invalid_field(FIELD, e))?,
        verified: input.is_verified.unwrap_or(false),
    })
}

fn data_of(value: Value) -> Result<UserData, ServiceError> {
    UserData::from_value(value).map_err(|e| ServiceError::invalid_field("data", e))
}

fn schema_of(id: String) -> Result<SchemaId, ServiceError> {
    SchemaId::new(id).map_err(|e| ServiceError::invalid_field("schemaId", e))
}

impl CreateUserRequest {
    pub(crate) fn into_new_user(self) -> Result<NewUser, ServiceError> {
        let mut contact = self.contact.unwrap_or_default();
        let codes = contact.code_requests()?;
        let authenticators = self.authenticators.unwrap_or_default();
        let password = authenticators
            .password
            .map(|input| input.into_request("authenticators.password"))
            .transpose()?;
        let usernames = authenticators
            .usernames
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, input)| {
                let field = format!("authenticators.usernames[{i}].username");
                Ok(NewUsername {
                    username: Username::new(input.username.unwrap_or_default())
                        .map_err(|e| ServiceError::invalid_field(field, e))?,
                    organization_specific: input.is_organization_specific.unwrap_or(false),
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        Ok(NewUser {
            user_id: self
                .user_id
                .map(UserId::new)
                .transpose()
                .map_err(|e| ServiceError::invalid_field("userId", e))?,
            schema_id: self.schema_id.map(schema_of).transpose()?,
            data: self.data.map(data_of).transpose()?.unwrap_or_default(),
            contact: Contact {
                email: contact.email.map(email_of).transpose()?,
                phone: contact.phone.map(phone_of).transpose()?,
            },
            usernames,
            password,
            codes,
        })
    }
}

impl PatchUserRequest {
    pub(crate) fn into_patch(self) -> Result<(UserPatch, CodeRequests), ServiceError> {
        let mut contact = self.contact.unwrap_or_default();
        let codes = contact.code_requests()?;
        let patch = UserPatch {
            schema_id: self.schema_id.map(schema_of).transpose()?,
            data: self.data.map(data_of).transpose()?,
            email: contact.email.map(email_of).transpose()?,
            phone: contact.phone.map(phone_of).transpose()?,
        };
        Ok((patch, codes))
    }
}

// --- responses ---------------------------------------------------------------------

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OwnerOut {
    #[serde(rename = "type")]
    #[schema(value_type = crate::openapi::OwnerType)]
    kind: &'static str,
    id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DetailsOut {
    id: String,
    #[schema(format = DateTime)]
    created: String,
    #[schema(format = DateTime)]
    changed: String,
    owner: OwnerOut,
}

impl From<&ResourceDetails> for DetailsOut {
    fn from(details: &ResourceDetails) -> Self {
        DetailsOut {
            id: details.id.clone(),
            created: details.created.to_rfc3339(),
            changed: details.changed.to_rfc3339(),
            owner: OwnerOut {
                kind: details.owner.kind.as_str(),
                id: details.owner.id.clone(),
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DetailsResponse {
    details: DetailsOut,
}

impl From<&ResourceDetails> for DetailsResponse {
    fn from(details: &ResourceDetails) -> Self {
        DetailsResponse {
            details: details.into(),
        }
    }
}

/// A user created or changed: its details, and the codes asked for with `returnCode`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WrittenUserResponse {
    details: DetailsOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_code: Option<String>,
}

impl From<&WrittenUser> for WrittenUserResponse {
    fn from(written: &WrittenUser) -> Self {
        WrittenUserResponse {
            details: (&written.details).into(),
            email_code: written.email_code.clone(),
            phone_code: written.phone_code.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SchemaOut {
    id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmailOut {
    address: String,
    #[serde(skip_serializing_if = "is_false")]
    is_verified: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PhoneOut {
    number: String,
    #[serde(skip_serializing_if = "is_false")]
    is_verified: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContactOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<EmailOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<PhoneOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsernameOut {
    username_id: String,
    username: String,
    #[serde(skip_serializing_if = "is_false")]
    is_organization_specific: bool,
}

/// A password's metadata: never the password nor its hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordOut {
    last_changed: String,
    #[serde(skip_serializing_if = "is_false")]
    change_required: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthenticatorsOut {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    usernames: Vec<UsernameOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<PasswordOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserOut {
    details: DetailsOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<SchemaOut>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    data: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<ContactOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authenticators: Option<AuthenticatorsOut>,
    #[schema(value_type = crate::openapi::UserState)]
    state: &'static str,
    /// A userd extension: present, and true, only when the user is locked.
    #[serde(skip_serializing_if = "is_false")]
    locked: bool,
}

impl From<&User> for UserOut {
    fn from(user: &User) -> Self {
        let contact = &user.contact;
        UserOut {
            details: (&ResourceDetails::of_user(user)).into(),
            schema: user
                .schema_id
                .as_ref()
                .map(|id| SchemaOut { id: id.to_string() }),
            data: user.data.as_map().clone(),
            contact: (contact.email.is_some() || contact.phone.is_some()).then(|| ContactOut {
                email: contact.email.as_ref().map(|e| EmailOut {
                    address: e.address.as_str().to_owned(),
                    is_verified: e.verified,
                }),
                phone: contact.phone.as_ref().map(|p| PhoneOut {
                    number: p.number.as_str().to_owned(),
                    is_verified: p.verified,
                }),
            }),
            authenticators: (!user.usernames.is_empty() || user.password.is_some()).then(|| {
                AuthenticatorsOut {
                    usernames: user
                        .usernames
                        .iter()
                        .map(|u| UsernameOut {
                            username_id: u.id.to_string(),
                            username: u.username.as_str().to_owned(),
                            is_organization_specific: u.organization_specific,
                        })
                        .collect(),
                    password: user.password.as_ref().map(|p| PasswordOut {
                        last_changed: p.changed.to_rfc3339(),
                        change_required: p.change_required,
                    }),
                }
            }),
            state: user.state().as_str(),
            locked: user.lock.is_some(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GetUserResponse {
    pub user: UserOut,
}

// --- administration ----------------------------------------------------------------

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct CreateOrganizationRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemberRequest {
    #[schema(min_length = 1, max_length = 200)]
    user_id: Option<String>,
    #[schema(value_type = Option<Vec<crate::openapi::RoleName>>)]
    roles: Option<Vec<String>>,
}

impl MemberRequest {
    pub(crate) fn into_parts(self) -> Result<(UserId, Vec<Role>), ServiceError> {
        let user = UserId::new(self.user_id.unwrap_or_default())
            .map_err(|e| ServiceError::invalid_field("userId", e))?;
        let roles = self
            .roles
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                Role::parse(&name).ok_or_else(|| ServiceError::InvalidArgument {
                    reason: "INVALID_ROLE",
                    message: format!("roles[{i}]: unknown role {name:?}"),
                    field: Some(format!("roles[{i}]")),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((user, roles))
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateTokenRequest {
    /// RFC 3339; must be in the future. Without it the token does not expire.
    #[schema(format = DateTime)]
    expiration_date: Option<String>,
}

impl CreateTokenRequest {
    pub(crate) fn expiration(&self) -> Result<Option<Timestamp>, ServiceError> {
        self.expiration_date
            .as_deref()
            .map(|text| {
                Timestamp::parse_rfc3339(text).ok_or_else(|| ServiceError::InvalidArgument {
                    reason: "INVALID_EXPIRATION_DATE",
                    message: format!("expirationDate {text:?} is not an RFC 3339 timestamp"),
                    field: Some("expirationDate".to_owned()),
                })
            })
            .transpose()
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateOrganizationResponse {
    pub details: DetailsOut,
    pub organization_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationOut {
    pub details: DetailsOut,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GetOrganizationResponse {
    pub organization: OrganizationOut,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateTokenResponse {
    pub details: DetailsOut,
    pub personal_access_token_id: String,
    pub personal_access_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenOut {
    personal_access_token_id: String,
    #[schema(format = DateTime)]
    creation_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    expiration_date: Option<String>,
    /// Who issued it; absent when userd did (first start, recovery, or tokens made
    /// before issuers were recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ListTokensResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    result: Vec<TokenOut>,
}

impl From<&[TokenRecord]> for ListTokensResponse {
    fn from(tokens: &[TokenRecord]) -> Self {
        ListTokensResponse {
            result: tokens
                .iter()
                .map(|token| TokenOut {
                    personal_access_token_id: token.id.clone(),
                    creation_date: token.created.to_rfc3339(),
                    expiration_date: token.expires_at.map(Timestamp::to_rfc3339),
                    issuer_id: token.issuer.as_ref().map(ToString::to_string),
                })
                .collect(),
        }
    }
}
