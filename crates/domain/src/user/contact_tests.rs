//! Proving an address with a code: the code's rules are those of reset codes; a new
//! address voids the code sent to the old one.

use serde_json::json;

use super::*;
use crate::password::{CodeRefusal, MAX_CODE_ATTEMPTS};
use crate::values::Email;

fn at(micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(micros)
}

fn user(email_verified: Option<bool>) -> User {
    let created = UserCreated {
        org_id: OrgId::new("org-1").unwrap(),
        schema_id: None,
        data: UserData::from_value(json!({})).unwrap(),
        contact: Contact {
            email: email_verified.map(|verified| EmailContact {
                address: Email::new("ada@example.com").unwrap(),
                verified,
            }),
            phone: None,
        },
        usernames: Vec::new(),
    };
    User::create(UserId::new("user-1").unwrap(), created, at(0), None)
        .unwrap()
        .0
}

fn run(user: &User, command: Command, now: i64) -> User {
    user.execute(&command, at(now), None).unwrap().unwrap().0
}

fn add_code(user: &User, hash: &str, expires: i64) -> User {
    let command = Command::AddContactCode {
        kind: ContactKind::Email,
        code_hash: hash.into(),
        expires: at(expires),
    };
    run(user, command, 1)
}

#[test]
fn a_code_proves_the_address_once() {
    let user = add_code(&user(Some(false)), "h1", 100);
    assert_eq!(
        user.check_contact_code(ContactKind::Email, "h1", at(2)),
        Ok(())
    );
    assert_eq!(
        user.check_contact_code(ContactKind::Phone, "h1", at(2)),
        Err(CodeRefusal::Invalid),
        "each address has its own code"
    );
    let verified = run(&user, Command::VerifyContact(ContactKind::Email), 2);
    assert!(verified.contact.email.as_ref().unwrap().verified);
    assert!(verified.email_code.is_none());
    assert_eq!(
        verified.check_contact_code(ContactKind::Email, "h1", at(3)),
        Err(CodeRefusal::Invalid)
    );
    assert_eq!(
        verified.decide(&Command::VerifyContact(ContactKind::Email), at(3)),
        Err(Refusal::EmailAlreadyVerified)
    );
}

#[test]
fn codes_expire_die_after_five_wrong_tries_and_a_new_one_voids_the_old() {
    let mut user = add_code(&user(Some(false)), "h1", 100);
    assert_eq!(
        user.check_contact_code(ContactKind::Email, "h1", at(100)),
        Err(CodeRefusal::Expired)
    );
    for _ in 0..MAX_CODE_ATTEMPTS {
        assert_eq!(
            user.check_contact_code(ContactKind::Email, "wrong", at(5)),
            Err(CodeRefusal::Invalid)
        );
        user = run(&user, Command::FailContactCode(ContactKind::Email), 5);
    }
    assert_eq!(
        user.check_contact_code(ContactKind::Email, "h1", at(5)),
        Err(CodeRefusal::Exhausted)
    );
    let renewed = add_code(&user, "h2", 200);
    assert_eq!(
        renewed.check_contact_code(ContactKind::Email, "h1", at(6)),
        Err(CodeRefusal::Invalid)
    );
    assert_eq!(
        renewed.check_contact_code(ContactKind::Email, "h2", at(6)),
        Ok(())
    );
}

#[test]
fn a_new_address_voids_the_code_and_codes_need_an_unverified_address() {
    let user = add_code(&user(Some(false)), "h1", 100);
    let moved = run(
        &user,
        Command::Patch(UserPatch {
            email: Some(EmailContact {
                address: Email::new("ada@new.example.com").unwrap(),
                verified: false,
            }),
            ..UserPatch::default()
        }),
        2,
    );
    assert!(moved.email_code.is_none());
    let code = |kind| Command::AddContactCode {
        kind,
        code_hash: "h".into(),
        expires: at(9),
    };
    assert_eq!(
        self::user(None).decide(&code(ContactKind::Email), at(1)),
        Err(Refusal::NoEmail)
    );
    assert_eq!(
        self::user(Some(true)).decide(&code(ContactKind::Email), at(1)),
        Err(Refusal::EmailAlreadyVerified)
    );
    assert_eq!(
        self::user(Some(false)).decide(&code(ContactKind::Phone), at(1)),
        Err(Refusal::NoPhone)
    );
}
