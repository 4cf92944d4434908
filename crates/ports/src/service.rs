//! The driving port of users ([`UserService`]): what a transport adapter may ask, in the
//! adapter-neutral types it asks with. The application crate implements it.

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::authz::Caller;
use userd_domain::user::{Command, Contact, User, UserPatch};
use userd_domain::values::{OrgId, SchemaId, UserData, UserId, Username};

use crate::error::ServiceError;
use crate::search::{SearchRequest, SortColumn};

/// What the client presented to identify itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    None,
    Bearer(String),
}

impl Credentials {
    /// The credentials of an `Authorization` header (HTTP) or `authorization` metadata
    /// (RPC): `Bearer <token>`, the scheme in any case; anything else is none.
    pub fn from_authorization(value: Option<&str>) -> Credentials {
        match value.map(str::trim).and_then(|v| v.split_once(' ')) {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Credentials::Bearer(token.trim().to_owned())
            }
            _ => Credentials::None,
        }
    }
}

/// The user a request is about, and the organization the client expects it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRef {
    pub id: UserId,
    pub expected_org: Option<OrgId>,
    /// `If-Match`: write only if the user is at one of these versions.
    pub if_match: Option<IfMatch>,
}

impl UserRef {
    pub fn new(id: UserId) -> UserRef {
        UserRef {
            id,
            expected_org: None,
            if_match: None,
        }
    }
}

/// A client's precondition on the version (the event sequence) of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any version of an existing user.
    Any,
    /// Any of these versions. Empty when the header named none userd could have made,
    /// which then matches nothing.
    Versions(Vec<u64>),
}

impl IfMatch {
    pub fn matches(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewUsername {
    pub username: Username,
    pub organization_specific: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct NewUser {
    /// The client's choice of id; the server makes one when absent.
    pub user_id: Option<UserId>,
    pub schema_id: Option<SchemaId>,
    pub data: UserData,
    pub contact: Contact,
    pub usernames: Vec<NewUsername>,
    /// `authenticators.password`: its proof is always [`crate::login::PasswordProof::None`].
    pub password: Option<crate::login::SetPassword>,
    /// Codes to prove the new addresses with.
    pub codes: CodeRequests,
}

/// Codes to make for a user's unverified addresses, and how each reaches the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeRequests {
    pub email: Option<crate::contact::CodeDelivery>,
    pub phone: Option<crate::contact::CodeDelivery>,
}

impl CodeRequests {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none()
    }
}

/// A user just created or changed, with the codes handed to the caller (those asked for
/// with [`crate::contact::CodeDelivery::Return`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenUser {
    pub details: ResourceDetails,
    pub email_code: Option<String>,
    pub phone_code: Option<String>,
}

impl WrittenUser {
    pub fn without_codes(details: ResourceDetails) -> Self {
        WrittenUser {
            details,
            email_code: None,
            phone_code: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerType {
    Instance,
    Organization,
}

impl OwnerType {
    pub const ALL: [OwnerType; 2] = [OwnerType::Instance, OwnerType::Organization];

    /// The enum name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::Instance => "OWNER_TYPE_INSTANCE",
            OwnerType::Organization => "OWNER_TYPE_ORG",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: OwnerType,
    pub id: String,
}

/// The `details` of a resource in a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceDetails {
    pub id: String,
    pub created: Timestamp,
    pub changed: Timestamp,
    pub owner: Owner,
    /// The sequence of the last event: the resource's version.
    pub sequence: u64,
}

impl ResourceDetails {
    pub fn of_user(user: &User) -> Self {
        ResourceDetails {
            id: user.id.to_string(),
            created: user.created,
            changed: user.changed,
            owner: Owner {
                kind: OwnerType::Organization,
                id: user.org_id.to_string(),
            },
            sequence: user.sequence,
        }
    }
}

/// The use cases, as the HTTP adapter sees them.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait UserService: Send + Sync {
    /// Resolves the request's credentials to a caller.
    async fn authenticate(&self, credentials: &Credentials) -> Result<Caller, ServiceError>;

    /// Creates a user in `org`, or in the caller's own organization when `None`.
    async fn create_user(
        &self,
        caller: &Caller,
        org: Option<OrgId>,
        user: NewUser,
    ) -> Result<WrittenUser, ServiceError>;

    /// Changes a user's profile and contact, making the codes asked for; the same rules
    /// as [`UserService::execute`] with [`Command::Patch`].
    async fn patch_user(
        &self,
        caller: &Caller,
        target: &UserRef,
        patch: UserPatch,
        codes: CodeRequests,
    ) -> Result<WrittenUser, ServiceError>;

    async fn get_user(&self, caller: &Caller, target: &UserRef) -> Result<User, ServiceError>;

    /// Patches, locks, unlocks, deactivates, activates or deletes a user.
    async fn execute(
        &self,
        caller: &Caller,
        target: &UserRef,
        command: Command,
    ) -> Result<ResourceDetails, ServiceError>;

    /// Users matching every filter, among those the caller may read.
    async fn search_users(
        &self,
        caller: &Caller,
        request: SearchRequest,
    ) -> Result<SearchResult, ServiceError>;

    /// Whether the service can do its work (the database answers).
    async fn readiness(&self) -> Result<(), ServiceError>;
}

/// One page of a search, and what was applied to make it.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    pub total: u64,
    pub users: Vec<User>,
    pub applied_limit: u64,
    /// The sorting column the client asked for, echoed back.
    pub sort: Option<SortColumn>,
    pub timestamp: Timestamp,
}
