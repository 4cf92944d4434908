//! The contact use cases against mocked ports: who may do what, what is written with
//! which message, and what the caller gets back.

use mockall::predicate::always;
use serde_json::json;
use userd_domain::authz::Role;
use userd_domain::user::{Contact, UserCreated};
use userd_domain::values::{Email, OrgId, UserData, UserId};
use userd_ports::error::ErrorKind;
use userd_ports::notify::Channel;

use super::*;
use crate::messages::Delivery;
use crate::users::tests::{Mocks, NOW, caller_with};

fn ada(verified: bool) -> User {
    let created = UserCreated {
        org_id: OrgId::new("home").unwrap(),
        schema_id: None,
        data: UserData::from_value(json!({})).unwrap(),
        contact: Contact {
            email: Some(EmailContact {
                address: Email::new("ada@example.com").unwrap(),
                verified,
            }),
            phone: None,
        },
        usernames: Vec::new(),
    };
    User::create(
        UserId::new("ada").unwrap(),
        created,
        Timestamp::from_unix_micros(NOW - 1_000),
        None,
    )
    .unwrap()
    .0
}

fn target() -> UserRef {
    UserRef::new(UserId::new("ada").unwrap())
}

fn admin() -> Caller {
    caller_with(&[Role::IamOwner], &[])
}

/// The user itself, without any role.
fn herself() -> Caller {
    Caller {
        user_id: UserId::new("ada").unwrap(),
        ..caller_with(&[], &[])
    }
}

fn new_address() -> Address {
    Address::Email(Email::new("ada@new.example.com").unwrap())
}

fn with_email(mocks: Mocks) -> UseCases {
    mocks.build().with_delivery(Delivery {
        channels: vec![Channel::Email],
        stored: None,
    })
}

#[tokio::test]
async fn a_sent_code_goes_to_the_outbox_with_its_events_and_is_not_shown() {
    let mut mocks = Mocks::new().finding(Some(ada(true)));
    mocks
        .users
        .expect_append_notifying()
        .times(1)
        .withf(|state, events, messages| {
            let types: Vec<&str> = events.iter().map(|e| e.change.event_type()).collect();
            types == ["user.updated", "user.email.code.added"]
                && state.email_code.is_some()
                && state.contact.email.as_ref().is_some_and(|e| !e.verified)
                && messages.len() == 1
                && messages[0].message.to == "ada@new.example.com"
                && messages[0].message.text.contains("Your code: ")
        })
        .returning(|_, _, _| Ok(()));
    let change = with_email(mocks)
        .set_contact(
            &admin(),
            &target(),
            new_address(),
            Verification::Code(CodeDelivery::Send { url_template: None }),
        )
        .await
        .unwrap();
    assert_eq!(change.code, None);
}

#[tokio::test]
async fn sending_needs_a_notifier_for_the_channel_and_nothing_is_written() {
    let mut mocks = Mocks::new().finding(Some(ada(false)));
    mocks.users.expect_append_notifying().never();
    mocks.users.expect_append_all().never();
    let error = mocks
        .build()
        .set_contact(
            &admin(),
            &target(),
            new_address(),
            Verification::Code(CodeDelivery::Send { url_template: None }),
        )
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "NOTIFICATIONS_NOT_CONFIGURED");
}

#[tokio::test]
async fn only_user_write_vouches_for_an_address_and_the_user_may_ask_for_a_code() {
    let mut mocks = Mocks::new().finding(Some(ada(false)));
    mocks.users.expect_append_all().never();
    let error = mocks
        .build()
        .set_contact(&herself(), &target(), new_address(), Verification::Verified)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);

    let mut mocks = Mocks::new().finding(Some(ada(false)));
    mocks
        .users
        .expect_append_all()
        .times(1)
        .with(always(), always())
        .returning(|_, _| Ok(()));
    let change = mocks
        .build()
        .set_contact(
            &herself(),
            &target(),
            new_address(),
            Verification::Code(CodeDelivery::Return),
        )
        .await
        .unwrap();
    assert_eq!(change.code.map(|c| c.len()), Some(8));
}

#[tokio::test]
async fn a_wrong_code_is_counted_and_a_proven_address_refuses_more() {
    let code = "ABCD2345";
    let pending = ada(false)
        .execute(
            &Command::AddContactCode {
                kind: ContactKind::Email,
                code_hash: hash_code(code),
                expires: Timestamp::from_unix_micros(NOW + 60_000_000),
            },
            Timestamp::from_unix_micros(NOW - 500),
            None,
        )
        .unwrap()
        .unwrap()
        .0;
    let mut mocks = Mocks::new().finding(Some(pending));
    mocks
        .users
        .expect_append()
        .times(1)
        .withf(|_, event| event.change.event_type() == "user.email.code.check.failed")
        .returning(|_, _| Ok(()));
    let error = mocks
        .build()
        .verify_contact(&admin(), &target(), ContactKind::Email, "WRONG234")
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "INVALID_CODE");

    let mut mocks = Mocks::new().finding(Some(ada(true)));
    mocks.users.expect_append().never();
    let error = mocks
        .build()
        .verify_contact(&admin(), &target(), ContactKind::Email, code)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "EMAIL_ALREADY_VERIFIED");
}
