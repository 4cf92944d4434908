//! The errors of the use cases, and the kind each belongs to.
//!
//! Every error carries a stable machine-readable `reason`, a message safe to show to the
//! client, and metadata. Internal causes (SQL, I/O) stay in [`ServiceError::Internal`] and
//! [`ServiceError::Unavailable`], whose client messages never include them.

use userd_domain::authz::Permission;
use userd_domain::password::{CheckRefusal, CodeRefusal};
use userd_domain::user::Refusal;
use userd_domain::values::InvalidValue;

/// The canonical error kinds (the gRPC status codes), independent of any transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    FailedPrecondition,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    Aborted,
    ResourceExhausted,
    Internal,
    Unimplemented,
    Unavailable,
    DeadlineExceeded,
}

/// An error whose details must stay out of responses.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{message}")]
    InvalidArgument {
        reason: &'static str,
        message: String,
        /// The request field at fault, in the client's spelling (`contact.email.address`).
        field: Option<String>,
    },
    #[error("missing, unknown, expired or revoked bearer token")]
    Unauthenticated,
    #[error("user not found")]
    UserNotFound { user_id: String },
    #[error("organization not found")]
    OrganizationNotFound { org_id: String },
    #[error("the caller lacks the permission {permission}")]
    PermissionDenied { permission: Permission },
    #[error("{0}")]
    PrivilegeEscalation(&'static str),
    /// No membership of the user in the organization, or on the instance (`org_id` none).
    #[error("the user holds no role there")]
    MemberNotFound {
        org_id: Option<String>,
        user_id: String,
    },
    #[error("personal access token not found")]
    TokenNotFound { token_id: String },
    /// The state machine refused; built by [`ServiceError::refused`], never holding
    /// [`Refusal::Deleted`].
    #[error("{refusal}")]
    Refused { refusal: Refusal, user_id: String },
    #[error("the username {username:?} is already taken")]
    UsernameTaken { username: String },
    #[error("a user with the id {user_id:?} already exists")]
    UserAlreadyExists { user_id: String },
    #[error("the user is no longer at the version given in If-Match")]
    VersionMismatch { user_id: String, current: u64 },
    #[error("the user was changed concurrently too often; retry the request")]
    Aborted { user_id: String },
    /// A password check that failed. Says nothing about who exists: an unknown user, one
    /// without a password and a wrong password read alike.
    #[error("{0}")]
    Credentials(CheckRefusal),
    /// A new password breaks the complexity settings; `rule` names which.
    #[error("the password is too weak: {message}")]
    PasswordTooWeak { rule: &'static str, message: String },
    #[error("session not found")]
    SessionNotFound { session_id: String },
    /// A verification code that was not accepted.
    #[error("{0}")]
    Code(CodeRefusal),
    /// A message was to be sent, but no notifier is configured.
    #[error("no notification channel is configured; ask for returnCode instead")]
    NotificationsNotConfigured,
    /// A message was to be sent through a channel the user has no address for.
    #[error("the user has no {} to send to", address_kind(*.0))]
    NoContact(crate::notify::Channel),
    #[error("the database is unavailable")]
    Unavailable(#[source] Cause),
    #[error("internal error")]
    Internal(#[source] Cause),
}

fn address_kind(channel: crate::notify::Channel) -> &'static str {
    match channel {
        crate::notify::Channel::Email => "e-mail address",
        crate::notify::Channel::Sms => "phone number",
    }
}

impl ServiceError {
    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        ServiceError::InvalidArgument {
            reason,
            message: message.into(),
            field: None,
        }
    }

    /// A refused value, attributed to the request field it came from.
    pub fn invalid_field(field: impl Into<String>, error: InvalidValue) -> Self {
        let field = field.into();
        ServiceError::InvalidArgument {
            reason: error.reason,
            message: format!("{field}: {}", error.message),
            field: Some(field),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            ServiceError::Unauthenticated => ErrorKind::Unauthenticated,
            ServiceError::UserNotFound { .. } | ServiceError::OrganizationNotFound { .. } => {
                ErrorKind::NotFound
            }
            ServiceError::PermissionDenied { .. } | ServiceError::PrivilegeEscalation(_) => {
                ErrorKind::PermissionDenied
            }
            ServiceError::MemberNotFound { .. } | ServiceError::TokenNotFound { .. } => {
                ErrorKind::NotFound
            }
            ServiceError::Refused { .. } => ErrorKind::FailedPrecondition,
            ServiceError::UsernameTaken { .. } | ServiceError::UserAlreadyExists { .. } => {
                ErrorKind::AlreadyExists
            }
            ServiceError::Aborted { .. } => ErrorKind::Aborted,
            ServiceError::VersionMismatch { .. } => ErrorKind::FailedPrecondition,
            ServiceError::Credentials(refusal) => match refusal {
                CheckRefusal::Locked | CheckRefusal::Inactive => ErrorKind::FailedPrecondition,
                CheckRefusal::UnknownUser
                | CheckRefusal::NoPassword
                | CheckRefusal::PasswordChanged => ErrorKind::InvalidArgument,
            },
            ServiceError::PasswordTooWeak { .. } => ErrorKind::InvalidArgument,
            ServiceError::SessionNotFound { .. } => ErrorKind::NotFound,
            ServiceError::Code(CodeRefusal::Invalid) => ErrorKind::InvalidArgument,
            ServiceError::Code(CodeRefusal::Expired | CodeRefusal::Exhausted)
            | ServiceError::NotificationsNotConfigured
            | ServiceError::NoContact(_) => ErrorKind::FailedPrecondition,
            ServiceError::Unavailable(_) => ErrorKind::Unavailable,
            ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The stable, machine-readable reason (UPPER_SNAKE).
    pub fn reason(&self) -> &'static str {
        match self {
            ServiceError::InvalidArgument { reason, .. } => reason,
            ServiceError::Unauthenticated => "UNAUTHENTICATED",
            ServiceError::UserNotFound { .. } => "USER_NOT_FOUND",
            ServiceError::OrganizationNotFound { .. } => "ORGANIZATION_NOT_FOUND",
            ServiceError::PermissionDenied { .. } => "PERMISSION_DENIED",
            ServiceError::PrivilegeEscalation(_) => "PRIVILEGE_ESCALATION",
            ServiceError::MemberNotFound { .. } => "MEMBER_NOT_FOUND",
            ServiceError::TokenNotFound { .. } => "TOKEN_NOT_FOUND",
            ServiceError::Refused { refusal, .. } => refusal.reason(),
            ServiceError::UsernameTaken { .. } => "USERNAME_TAKEN",
            ServiceError::UserAlreadyExists { .. } => "USER_ALREADY_EXISTS",
            ServiceError::Aborted { .. } => "CONCURRENT_MODIFICATION",
            ServiceError::VersionMismatch { .. } => "ETAG_MISMATCH",
            ServiceError::Credentials(refusal) => refusal.reason(),
            ServiceError::PasswordTooWeak { .. } => "PASSWORD_TOO_WEAK",
            ServiceError::SessionNotFound { .. } => "SESSION_NOT_FOUND",
            ServiceError::Code(refusal) => refusal.reason(),
            ServiceError::NotificationsNotConfigured => "NOTIFICATIONS_NOT_CONFIGURED",
            ServiceError::NoContact(crate::notify::Channel::Email) => "EMAIL_NOT_SET",
            ServiceError::NoContact(crate::notify::Channel::Sms) => "PHONE_NOT_SET",
            ServiceError::Unavailable(_) => "DATABASE_UNAVAILABLE",
            ServiceError::Internal(_) => "INTERNAL",
        }
    }

    /// The state machine's refusal, as the client must see it: a deleted user exactly like
    /// one that never existed.
    pub fn refused(refusal: Refusal, user_id: String) -> ServiceError {
        match refusal {
            Refusal::Deleted => ServiceError::UserNotFound { user_id },
            refusal => ServiceError::Refused { refusal, user_id },
        }
    }

    /// The message for the client: never the internal cause.
    pub fn public_message(&self) -> String {
        match self {
            ServiceError::Unavailable(_) => "the database is unavailable; retry later".to_owned(),
            ServiceError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// Key/value pairs that help a client act on the error.
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        match self {
            ServiceError::InvalidArgument {
                field: Some(field), ..
            } => vec![("field", field.clone())],
            ServiceError::UserNotFound { user_id }
            | ServiceError::Refused { user_id, .. }
            | ServiceError::UserAlreadyExists { user_id }
            | ServiceError::Aborted { user_id } => vec![("userId", user_id.clone())],
            ServiceError::OrganizationNotFound { org_id } => {
                vec![("organizationId", org_id.clone())]
            }
            ServiceError::PermissionDenied { permission } => {
                vec![("permission", permission.as_str().to_owned())]
            }
            ServiceError::UsernameTaken { username } => vec![("username", username.clone())],
            ServiceError::VersionMismatch { user_id, current } => vec![
                ("userId", user_id.clone()),
                ("currentEtag", format!("\"{current}\"")),
            ],
            ServiceError::MemberNotFound { org_id, user_id } => org_id
                .iter()
                .map(|org| ("organizationId", org.clone()))
                .chain([("userId", user_id.clone())])
                .collect(),
            ServiceError::TokenNotFound { token_id } => {
                vec![("personalAccessTokenId", token_id.clone())]
            }
            ServiceError::PasswordTooWeak { rule, .. } => vec![("rule", (*rule).to_owned())],
            ServiceError::SessionNotFound { session_id } => {
                vec![("sessionId", session_id.clone())]
            }
            _ => Vec::new(),
        }
    }
}

/// Failures reported by the driven storage ports.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the same stream first (optimistic concurrency).
    #[error("concurrent modification")]
    Conflict,
    #[error("the user id is taken")]
    UserIdTaken,
    #[error("the username {0:?} is taken")]
    UsernameTaken(String),
    #[error("organization not found")]
    OrganizationNotFound,
    #[error("user not found")]
    UserNotFound,
    #[error("the database is unavailable")]
    Unavailable(#[source] Cause),
    /// Something stored could not be read back as what it should be: `what` names it
    /// (a table and a key, never a stored value), `cause` says why.
    #[error("corrupt stored data: {what}")]
    Corrupt {
        what: String,
        #[source]
        cause: Cause,
    },
    #[error("storage error")]
    Internal(#[source] Cause),
}

impl StoreError {
    pub fn corrupt(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            cause: cause.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    /// The mapping for store errors a use case does not handle itself.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => ServiceError::Unavailable(cause),
            other => ServiceError::Internal(Box::new(other)),
        }
    }
}
