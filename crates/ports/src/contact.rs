//! The driving port of contact verification ([`ContactService`]): setting a user's
//! e-mail address or phone number, and proving it with a code.

use async_trait::async_trait;
use userd_domain::authz::Caller;
use userd_domain::user::ContactKind;
use userd_domain::values::{Email, Phone};

use crate::error::ServiceError;
use crate::service::{ResourceDetails, UserRef};

/// A new address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Email(Email),
    Phone(Phone),
}

impl Address {
    pub fn kind(&self) -> ContactKind {
        match self {
            Address::Email(_) => ContactKind::Email,
            Address::Phone(_) => ContactKind::Phone,
        }
    }
}

/// How a code reaches the user: sent by userd, or handed to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeDelivery {
    /// By e-mail to an e-mail address, by SMS to a phone number; the link, if any, may
    /// hold `{{.UserID}}`, `{{.Code}}`, `{{.OrgID}}`.
    Send { url_template: Option<String> },
    /// The caller delivers it: the code is in the answer.
    Return,
}

/// How a new address is to be proven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// A code, delivered so.
    Code(CodeDelivery),
    /// The caller vouches for it (needs `user.write`).
    Verified,
}

/// A change that made a code: with [`CodeDelivery::Return`], the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactChange {
    pub details: ResourceDetails,
    pub code: Option<String>,
}

#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ContactService: Send + Sync {
    /// Sets the user's e-mail address or phone number; unless vouched for, it is
    /// unverified until its code comes back.
    async fn set_contact(
        &self,
        caller: &Caller,
        target: &UserRef,
        address: Address,
        verification: Verification,
    ) -> Result<ContactChange, ServiceError>;

    /// Proves the address with its code.
    async fn verify_contact(
        &self,
        caller: &Caller,
        target: &UserRef,
        kind: ContactKind,
        code: &str,
    ) -> Result<ResourceDetails, ServiceError>;

    /// A new code for the unverified address; the old one stops working.
    async fn resend_contact_code(
        &self,
        caller: &Caller,
        target: &UserRef,
        kind: ContactKind,
        delivery: CodeDelivery,
    ) -> Result<ContactChange, ServiceError>;
}
