//! The contact verification routes against a mocked contact port: the right call with
//! the right arguments, the answer of docs/api.md, and refused bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::{Method, StatusCode, header};
use actix_web::test::{self, TestRequest};
use serde_json::{Value, json};
use userd_api_http::{Metrics, Services, app};
use userd_domain::Timestamp;
use userd_domain::authz::{Caller, Role, RoleSet};
use userd_domain::password::CodeRefusal;
use userd_domain::user::ContactKind;
use userd_domain::values::{Email, OrgId, Phone, UserId};
use userd_ports::ServiceError;
use userd_ports::admin::MockAdminService;
use userd_ports::contact::{
    Address, CodeDelivery, ContactChange, MockContactService, Verification,
};
use userd_ports::service::{Credentials, MockUserService, Owner, OwnerType, ResourceDetails};

const TOKEN: &str = "userd_pat_test";
const USER: &str = "/resources/v3alpha/users/ada";

fn caller() -> Caller {
    Caller {
        user_id: UserId::new("admin").unwrap(),
        org_id: OrgId::new("org").unwrap(),
        roles: userd_domain::authz::Memberships {
            instance: RoleSet::new([Role::IamOwner]),
            organizations: BTreeMap::new(),
        },
        ceiling: None,
    }
}

fn details() -> ResourceDetails {
    ResourceDetails {
        id: "ada".into(),
        created: Timestamp::from_unix_micros(1_732_292_825_645_000),
        changed: Timestamp::from_unix_micros(1_732_292_826_000_000),
        owner: Owner {
            kind: OwnerType::Organization,
            id: "org".into(),
        },
        sequence: 4,
    }
}

fn change(code: Option<&str>) -> ContactChange {
    ContactChange {
        details: details(),
        code: code.map(str::to_owned),
    }
}

async fn call(
    contact: MockContactService,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let mut users = MockUserService::new();
    users
        .expect_authenticate()
        .returning(|credentials| match credentials {
            Credentials::Bearer(token) if token == TOKEN => Ok(caller()),
            _ => Err(ServiceError::Unauthenticated),
        });
    let app = test::init_service(app(Services::new(
        Arc::new(users),
        Arc::new(MockAdminService::new()),
        Arc::new(userd_ports::login::MockLoginService::new()),
        Arc::new(contact),
        Arc::new(Metrics::new().unwrap()),
    )))
    .await;
    let request = TestRequest::default()
        .method(method)
        .uri(path)
        .insert_header((header::AUTHORIZATION, format!("Bearer {TOKEN}")))
        .set_json(body)
        .to_request();
    let response = test::call_service(&app, request).await;
    let status = response.status();
    let etag = response.headers().get(header::ETAG).cloned();
    let body = test::read_body(response).await;
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status == StatusCode::OK {
        assert_eq!(etag.unwrap(), "\"4\"", "the user's new version");
    }
    (status, json)
}

fn reason(body: &Value) -> &str {
    body["details"][0]["reason"].as_str().unwrap_or_default()
}

#[actix_web::test]
async fn set_email_sends_a_code_unless_told_otherwise() {
    let mut contact = MockContactService::new();
    contact
        .expect_set_contact()
        .withf(|_, target, address, verification| {
            target.id.as_str() == "ada"
                && *address == Address::Email(Email::new("ada@example.com").unwrap())
                && *verification
                    == Verification::Code(CodeDelivery::Send {
                        url_template: Some("https://x.test/{{.Code}}".into()),
                    })
        })
        .times(1)
        .returning(|_, _, _, _| Ok(change(None)));
    let (status, body) = call(
        contact,
        Method::PUT,
        &format!("{USER}/email"),
        json!({"email": {"address": "ada@example.com",
                         "sendCode": {"urlTemplate": "https://x.test/{{.Code}}"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["details"]["id"], "ada");
    assert!(body.get("verificationCode").is_none(), "{body}");

    let mut contact = MockContactService::new();
    contact
        .expect_set_contact()
        .withf(|_, _, _, verification| {
            *verification == Verification::Code(CodeDelivery::Send { url_template: None })
        })
        .times(1)
        .returning(|_, _, _, _| Ok(change(None)));
    let (status, _) = call(
        contact,
        Method::PUT,
        &format!("{USER}/email"),
        json!({"email": {"address": "ada@example.com"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn return_code_answers_the_code_and_is_verified_vouches() {
    let mut contact = MockContactService::new();
    contact
        .expect_set_contact()
        .withf(|_, _, address, verification| {
            *address == Address::Phone(Phone::new("+41791234567").unwrap())
                && *verification == Verification::Code(CodeDelivery::Return)
        })
        .times(1)
        .returning(|_, _, _, _| Ok(change(Some("ABCD2345"))));
    let (status, body) = call(
        contact,
        Method::PUT,
        &format!("{USER}/phone"),
        json!({"phone": {"number": "+41791234567", "returnCode": {}}}),
    )
    .await;
    assert_eq!(
        (status, &body["verificationCode"]),
        (StatusCode::OK, &json!("ABCD2345"))
    );

    let mut contact = MockContactService::new();
    contact
        .expect_set_contact()
        .withf(|_, _, _, verification| *verification == Verification::Verified)
        .times(1)
        .returning(|_, _, _, _| Ok(change(None)));
    let (status, _) = call(
        contact,
        Method::PUT,
        &format!("{USER}/email"),
        json!({"email": {"address": "ada@example.com", "isVerified": true}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn contradicting_or_missing_fields_are_refused_before_the_use_case() {
    for (path, body, wanted) in [
        (
            "email",
            json!({"email": {"address": "ada@example.com", "sendCode": {}, "returnCode": {}}}),
            "INVALID_ARGUMENT",
        ),
        (
            "email",
            json!({"email": {"address": "ada@example.com", "isVerified": true, "returnCode": {}}}),
            "INVALID_ARGUMENT",
        ),
        (
            "email",
            json!({"email": {"address": "not an address"}}),
            "INVALID_EMAIL",
        ),
        ("email", json!({}), "INVALID_EMAIL"),
        (
            "phone",
            json!({"phone": {"number": "call me maybe"}}),
            "INVALID_PHONE",
        ),
        ("email/_verify", json!({}), "INVALID_CODE"),
        (
            "phone/_resend",
            json!({"sendCode": {}, "returnCode": {}}),
            "INVALID_ARGUMENT",
        ),
    ] {
        let method = if path.contains('_') {
            Method::POST
        } else {
            Method::PUT
        };
        let contact = MockContactService::new();
        let (status, answer) = call(contact, method, &format!("{USER}/{path}"), body.clone()).await;
        assert_eq!(
            (status, reason(&answer)),
            (StatusCode::BAD_REQUEST, wanted),
            "{path} {body}: {answer}"
        );
    }
}

#[actix_web::test]
async fn verify_and_resend_name_the_address_by_their_path() {
    let mut contact = MockContactService::new();
    contact
        .expect_verify_contact()
        .withf(|_, target, kind, code| {
            target.id.as_str() == "ada" && *kind == ContactKind::Phone && code == "abcd2345"
        })
        .times(1)
        .returning(|_, _, _, _| Ok(details()));
    let (status, body) = call(
        contact,
        Method::POST,
        &format!("{USER}/phone/_verify"),
        json!({"verificationCode": "abcd2345"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut contact = MockContactService::new();
    contact
        .expect_verify_contact()
        .returning(|_, _, _, _| Err(ServiceError::Code(CodeRefusal::Expired)));
    let (status, body) = call(
        contact,
        Method::POST,
        &format!("{USER}/email/_verify"),
        json!({"verificationCode": "abcd2345"}),
    )
    .await;
    assert_eq!(
        (status, reason(&body)),
        (StatusCode::BAD_REQUEST, "CODE_EXPIRED")
    );

    let mut contact = MockContactService::new();
    contact
        .expect_resend_contact_code()
        .withf(|_, _, kind, delivery| {
            *kind == ContactKind::Email && *delivery == CodeDelivery::Return
        })
        .times(1)
        .returning(|_, _, _, _| Ok(change(Some("ABCD2345"))));
    let (status, body) = call(
        contact,
        Method::POST,
        &format!("{USER}/email/_resend"),
        json!({"returnCode": {}}),
    )
    .await;
    assert_eq!(
        (status, &body["verificationCode"]),
        (StatusCode::OK, &json!("ABCD2345"))
    );
}
