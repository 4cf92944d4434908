//! The password fields of ZITADEL's messages (v3alpha and v2 alike) as the login use
//! cases' requests. proto3 cannot tell an empty string from an absent one, so an empty
//! password is a missing one.

use userd_ports::ServiceError;
use userd_ports::login::{NewPassword, PasswordProof, SetPassword};
use userd_ports::passwords::PlainPassword;

fn required(field: &str) -> ServiceError {
    ServiceError::InvalidArgument {
        reason: "PASSWORD_REQUIRED",
        message: format!("{field}: a password is required"),
        field: Some(field.to_owned()),
    }
}

/// A password in clear, as a check or a proof gives it.
pub(crate) fn plain(field: &str, text: &str) -> Result<PlainPassword, ServiceError> {
    if text.is_empty() {
        return Err(required(field));
    }
    Ok(PlainPassword::new(text.to_owned()))
}

/// The new password of a request: in clear or as a hash to import.
pub(crate) enum Given<'a> {
    Plain(&'a str),
    Hash(&'a str),
}

/// How a request proves the caller may change the password.
pub(crate) enum Proof<'a> {
    CurrentPassword(&'a str),
    VerificationCode(&'a str),
}

/// A SetPassword request from its parts; `field` names the new password as the client
/// spelled it.
pub(crate) fn set_password(
    field: &str,
    given: Option<Given<'_>>,
    change_required: bool,
    proof: Option<Proof<'_>>,
) -> Result<SetPassword, ServiceError> {
    let password = match given {
        Some(Given::Plain(text)) => NewPassword::Plain(plain(field, text)?),
        Some(Given::Hash(hash)) if !hash.is_empty() => NewPassword::Hash(hash.to_owned()),
        Some(Given::Hash(_)) | None => return Err(required(field)),
    };
    let proof = match proof {
        None => PasswordProof::None,
        Some(Proof::CurrentPassword(current)) => {
            PasswordProof::CurrentPassword(plain("currentPassword", current)?)
        }
        Some(Proof::VerificationCode(code)) => PasswordProof::VerificationCode(code.to_owned()),
    };
    Ok(SetPassword {
        password,
        change_required,
        proof,
    })
}
