//! Contact verification routes: set an e-mail address or phone number, prove it with
//! its code, ask for a new code.

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use userd_domain::user::ContactKind;
use userd_domain::values::{Email, Phone};
use userd_ports::ServiceError;
use userd_ports::contact::{Address, CodeDelivery, ContactChange, ContactService, Verification};
use utoipa::ToSchema;

use crate::body::{parse_json, read_body};
use crate::dto::DetailsOut;
use crate::handlers::{Answer, Service, authenticate, details, etag, user_ref};

pub(crate) type Contact = web::Data<dyn ContactService>;

fn invalid(reason: &'static str, field: &str, message: &str) -> ServiceError {
    ServiceError::InvalidArgument {
        reason,
        message: format!("{field}: {message}"),
        field: Some(field.to_owned()),
    }
}

/// `sendCode`: userd sends the code (by e-mail to an address, by SMS to a number).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendCode {
    /// A link for the message, with `{{.UserID}}`, `{{.Code}}`, `{{.OrgID}}`.
    pub(crate) url_template: Option<String>,
}

/// At most one of `sendCode` (the default), `returnCode` and `isVerified: true`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerificationInput {
    send_code: Option<SendCode>,
    /// `{}`: the code comes back in the answer, for callers that deliver it themselves.
    #[schema(value_type = Option<Object>)]
    return_code: Option<Value>,
    /// The caller vouches for the address (needs `user.write`).
    is_verified: Option<bool>,
}

impl VerificationInput {
    fn delivery(
        send_code: Option<SendCode>,
        return_code: Option<Value>,
        field: &str,
    ) -> Result<CodeDelivery, ServiceError> {
        match (send_code, return_code) {
            (Some(_), Some(_)) => Err(invalid(
                "INVALID_ARGUMENT",
                field,
                "give sendCode or returnCode, not both",
            )),
            (None, Some(_)) => Ok(CodeDelivery::Return),
            (send, None) => Ok(CodeDelivery::Send {
                url_template: send.and_then(|s| s.url_template),
            }),
        }
    }

    fn verification(self, field: &str) -> Result<Verification, ServiceError> {
        match self.is_verified {
            Some(true) if self.send_code.is_some() || self.return_code.is_some() => Err(invalid(
                "INVALID_ARGUMENT",
                field,
                "a verified address needs no code: drop sendCode and returnCode",
            )),
            Some(true) => Ok(Verification::Verified),
            _ => Self::delivery(self.send_code, self.return_code, field).map(Verification::Code),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetEmailInput {
    #[schema(format = Email, max_length = 200)]
    address: Option<String>,
    #[serde(flatten)]
    verification: VerificationInput,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct SetEmailRequest {
    email: Option<SetEmailInput>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetPhoneInput {
    #[schema(value_type = Option<crate::openapi::PhoneNumber>)]
    number: Option<String>,
    #[serde(flatten)]
    verification: VerificationInput,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct SetPhoneRequest {
    phone: Option<SetPhoneInput>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifyRequest {
    verification_code: Option<String>,
}

/// `sendCode` (the default) or `returnCode`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResendRequest {
    send_code: Option<SendCode>,
    #[schema(value_type = Option<Object>)]
    return_code: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContactChangeResponse {
    details: DetailsOut,
    /// With `returnCode` only: 8 characters, valid once, for `notify.code_ttl_secs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_code: Option<String>,
}

fn changed(change: &ContactChange) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header(etag(change.details.sequence));
    response.json(ContactChangeResponse {
        details: (&change.details).into(),
        verification_code: change.code.clone(),
    })
}

fn kind_of(req: &HttpRequest) -> ContactKind {
    if req.path().ends_with("/phone") || req.path().contains("/phone/") {
        ContactKind::Phone
    } else {
        ContactKind::Email
    }
}

#[utoipa::path(
    put,
    path = "/resources/v3alpha/users/{id}/email",
    tag = "contact",
    params(("id" = String, Path, description = "The id of the user.")),
    request_body(content = SetEmailRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Set; unverified until its code comes back", body = ContactChangeResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_email(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
) -> Answer {
    set(req, id, payload, service, contact, |body| {
        let input = parse_json::<SetEmailRequest>(body)?
            .email
            .ok_or_else(|| invalid("INVALID_EMAIL", "email", "email is required"))?;
        let address = Email::new(input.address.unwrap_or_default())
            .map_err(|e| ServiceError::invalid_field("email.address", e))?;
        Ok((
            Address::Email(address),
            input.verification.verification("email")?,
        ))
    })
    .await
}

#[utoipa::path(
    put,
    path = "/resources/v3alpha/users/{id}/phone",
    tag = "contact",
    params(("id" = String, Path, description = "The id of the user.")),
    request_body(content = SetPhoneRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Set; unverified until its code comes back", body = ContactChangeResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn set_phone(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
) -> Answer {
    set(req, id, payload, service, contact, |body| {
        let input = parse_json::<SetPhoneRequest>(body)?
            .phone
            .ok_or_else(|| invalid("INVALID_PHONE", "phone", "phone is required"))?;
        let number = Phone::new(input.number.unwrap_or_default())
            .map_err(|e| ServiceError::invalid_field("phone.number", e))?;
        Ok((
            Address::Phone(number),
            input.verification.verification("phone")?,
        ))
    })
    .await
}

/// Sets the address `parse` reads from the body.
async fn set(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
    parse: impl FnOnce(&[u8]) -> Result<(Address, Verification), crate::error::ApiError>,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let (address, verification) = parse(&body)?;
    let change = contact
        .set_contact(&caller, &target, address, verification)
        .await?;
    Ok(changed(&change))
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users/{id}/email/_verify",
    tag = "contact",
    params(("id" = String, Path, description = "The id of the user.")),
    request_body(content = VerifyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The address is verified", body = crate::dto::DetailsResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn verify_email(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
) -> Answer {
    verify(req, id, payload, service, contact).await
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users/{id}/phone/_verify",
    tag = "contact",
    params(("id" = String, Path, description = "The id of the user.")),
    request_body(content = VerifyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The number is verified", body = crate::dto::DetailsResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn verify_phone(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
) -> Answer {
    verify(req, id, payload, service, contact).await
}

async fn verify(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let code = parse_json::<VerifyRequest>(&body)?
        .verification_code
        .filter(|code| !code.is_empty())
        .ok_or_else(|| {
            invalid(
                "INVALID_CODE",
                "verificationCode",
                "verificationCode is required",
            )
        })?;
    let verified = contact
        .verify_contact(&caller, &target, kind_of(&req), &code)
        .await?;
    Ok(details(StatusCode::OK, &verified))
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users/{id}/email/_resend",
    tag = "contact",
    params(("id" = String, Path, description = "The id of the user.")),
    request_body(content = ResendRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A new code; any earlier one is void", body = ContactChangeResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn resend_email_code(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
) -> Answer {
    resend(req, id, payload, service, contact).await
}

#[utoipa::path(
    post,
    path = "/resources/v3alpha/users/{id}/phone/_resend",
    tag = "contact",
    params(("id" = String, Path, description = "The id of the user.")),
    request_body(content = ResendRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A new code; any earlier one is void", body = ContactChangeResponse),
        crate::openapi::WriteErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn resend_phone_code(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
) -> Answer {
    resend(req, id, payload, service, contact).await
}

async fn resend(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    service: Service,
    contact: Contact,
) -> Answer {
    let caller = authenticate(&req, &service).await?;
    let target = user_ref(&req, id.into_inner())?;
    let body = read_body(&req, payload).await?;
    let request = parse_json::<ResendRequest>(&body)?;
    let delivery = VerificationInput::delivery(request.send_code, request.return_code, "body")?;
    let change = contact
        .resend_contact_code(&caller, &target, kind_of(&req), delivery)
        .await?;
    Ok(changed(&change))
}
