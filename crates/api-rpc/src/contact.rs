//! The contact fields of ZITADEL's messages (v3alpha and v2 alike) as the contact use
//! cases' requests.

use userd_domain::values::{Email, Phone};
use userd_ports::ServiceError;
use userd_ports::contact::{Address, CodeDelivery, Verification};

use crate::convert::invalid;

/// What a message's `verification` oneof asked for.
pub(crate) enum Asked<'a> {
    /// `send_code`, with its `url_template` where the message has one.
    Send(Option<&'a str>),
    Return,
    IsVerified(bool),
}

/// A new address's verification; without one, userd sends a code, as ZITADEL does.
pub(crate) fn verification(asked: Option<Asked<'_>>) -> Verification {
    match asked {
        Some(Asked::IsVerified(true)) => Verification::Verified,
        Some(Asked::Return) => Verification::Code(CodeDelivery::Return),
        Some(Asked::Send(url)) => Verification::Code(CodeDelivery::Send {
            url_template: url.map(str::to_owned),
        }),
        None | Some(Asked::IsVerified(false)) => {
            Verification::Code(CodeDelivery::Send { url_template: None })
        }
    }
}

/// A resent code's delivery; without one, userd sends it.
pub(crate) fn delivery(asked: Option<Asked<'_>>) -> CodeDelivery {
    match verification(asked) {
        Verification::Code(delivery) => delivery,
        Verification::Verified => CodeDelivery::Send { url_template: None },
    }
}

pub(crate) fn email(field: &str, address: &str) -> Result<Address, ServiceError> {
    Email::new(address)
        .map(Address::Email)
        .map_err(|e| invalid(field, e))
}

pub(crate) fn phone(field: &str, number: &str) -> Result<Address, ServiceError> {
    Phone::new(number)
        .map(Address::Phone)
        .map_err(|e| invalid(field, e))
}

/// The code to verify: an empty one is refused before it could count as a wrong try.
pub(crate) fn code(code: &str) -> Result<&str, ServiceError> {
    if code.is_empty() {
        return Err(ServiceError::InvalidArgument {
            reason: "INVALID_CODE",
            message: "verificationCode: verificationCode is required".to_owned(),
            field: Some("verificationCode".to_owned()),
        });
    }
    Ok(code)
}
