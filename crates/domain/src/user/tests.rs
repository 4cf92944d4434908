use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::password::{Lock, UnlockCause};
use crate::values::Email;

fn at(micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(micros)
}

fn new_user() -> (User, UserEvent) {
    let created = UserCreated {
        org_id: OrgId::new("org-1").unwrap(),
        schema_id: None,
        data: UserData::from_value(json!({"givenName": "Ada"})).unwrap(),
        contact: Contact::default(),
        usernames: vec![UsernameEntry {
            id: UsernameId::new("u-1").unwrap(),
            username: Username::new("ada").unwrap(),
            organization_specific: true,
        }],
    };
    User::create(UserId::new("user-1").unwrap(), created, at(1_000), None).unwrap()
}

fn run(user: &User, command: Command) -> Result<Option<(User, UserEvent)>, Refusal> {
    user.execute(&command, at(2_000), Some(UserId::new("admin").unwrap()))
}

#[test]
fn only_an_active_unlocked_user_may_authenticate() {
    let (active, _) = new_user();
    assert!(active.may_authenticate());
    let (locked, _) = run(&active, Command::Lock).unwrap().unwrap();
    assert!(!locked.may_authenticate());
    let (inactive, _) = run(&active, Command::Deactivate).unwrap().unwrap();
    assert!(!inactive.may_authenticate());
    let (inactive_and_locked, _) = run(&inactive, Command::Lock).unwrap().unwrap();
    assert!(!inactive_and_locked.may_authenticate());
    let (unlocked, _) = run(&locked, Command::Unlock).unwrap().unwrap();
    assert!(unlocked.may_authenticate());
}

#[test]
fn creation_makes_an_active_unlocked_user_at_sequence_one() {
    let (user, event) = new_user();
    assert_eq!(user.state(), UserState::Active);
    assert!(user.lock.is_none());
    assert_eq!((user.sequence, event.sequence), (1, 1));
    assert_eq!(event.change.event_type(), "user.created");
    assert_eq!(user.created, user.changed);
}

#[test]
fn unlock_of_a_locked_user_appends_user_unlocked() {
    let (user, _) = new_user();
    let (locked, lock_event) = run(&user, Command::Lock).unwrap().unwrap();
    assert_eq!(lock_event.change, UserChange::Locked(Lock::ADMIN));
    assert_eq!(locked.state(), UserState::Locked);

    let (unlocked, event) = run(&locked, Command::Unlock).unwrap().unwrap();
    assert_eq!(event.change, UserChange::Unlocked(UnlockCause::Admin));
    assert_eq!(event.sequence, 3);
    assert_eq!(unlocked.state(), UserState::Active);
}

#[test]
fn each_refusal_has_its_reason() {
    let (user, _) = new_user();
    assert_eq!(run(&user, Command::Unlock), Err(Refusal::NotLocked));
    assert_eq!(run(&user, Command::Activate), Err(Refusal::NotInactive));
    let (locked, _) = run(&user, Command::Lock).unwrap().unwrap();
    assert_eq!(run(&locked, Command::Lock), Err(Refusal::AlreadyLocked));
    let (inactive, _) = run(&user, Command::Deactivate).unwrap().unwrap();
    assert_eq!(
        run(&inactive, Command::Deactivate),
        Err(Refusal::AlreadyInactive)
    );
    let reasons: Vec<_> = [
        Refusal::AlreadyLocked,
        Refusal::NotLocked,
        Refusal::AlreadyInactive,
        Refusal::NotInactive,
        Refusal::Deleted,
    ]
    .iter()
    .map(|r| r.reason())
    .collect();
    assert_eq!(
        reasons,
        [
            "USER_ALREADY_LOCKED",
            "USER_NOT_LOCKED",
            "USER_ALREADY_INACTIVE",
            "USER_NOT_INACTIVE",
            "USER_NOT_FOUND"
        ]
    );
}

#[test]
fn inactive_and_locked_is_reported_inactive_and_stays_locked_after_activation() {
    let (user, _) = new_user();
    let (locked, _) = run(&user, Command::Lock).unwrap().unwrap();
    let (both, _) = run(&locked, Command::Deactivate).unwrap().unwrap();
    assert_eq!(both.state(), UserState::Inactive);
    let (active_again, _) = run(&both, Command::Activate).unwrap().unwrap();
    assert_eq!(active_again.state(), UserState::Locked);
}

#[test]
fn a_patch_with_current_values_changes_nothing() {
    let (user, _) = new_user();
    let same = UserPatch {
        data: Some(user.data.clone()),
        ..UserPatch::default()
    };
    assert_eq!(run(&user, Command::Patch(same)), Ok(None));
    assert_eq!(run(&user, Command::Patch(UserPatch::default())), Ok(None));
}

#[test]
fn a_patch_event_carries_only_what_changed() {
    let (user, _) = new_user();
    let email = EmailContact {
        address: Email::new("ada@example.com").unwrap(),
        verified: true,
    };
    let patch = UserPatch {
        data: Some(user.data.clone()),
        email: Some(email.clone()),
        ..UserPatch::default()
    };
    let (after, event) = run(&user, Command::Patch(patch)).unwrap().unwrap();
    let UserChange::Updated(recorded) = &event.change else {
        panic!("expected user.updated, got {:?}", event.change);
    };
    assert_eq!(recorded.data, None, "unchanged data is not recorded");
    assert_eq!(recorded.email, Some(email.clone()));
    assert_eq!(after.contact.email, Some(email));
}

#[test]
fn deleted_users_refuse_everything() {
    let (user, _) = new_user();
    let (deleted, event) = run(&user, Command::Delete).unwrap().unwrap();
    assert_eq!(event.change, UserChange::Deleted);
    assert_eq!(deleted.state(), UserState::Deleted);
    for command in [
        Command::Lock,
        Command::Unlock,
        Command::Activate,
        Command::Deactivate,
        Command::Delete,
        Command::Patch(UserPatch::default()),
    ] {
        assert_eq!(run(&deleted, command), Err(Refusal::Deleted));
    }
}

#[test]
fn event_time_never_goes_backwards() {
    let (user, _) = new_user();
    let (after, event) = user.execute(&Command::Lock, at(10), None).unwrap().unwrap();
    assert_eq!(
        event.at, user.changed,
        "a clock behind the last event is clamped"
    );
    assert!(after.created <= after.changed);
}

#[test]
fn replay_rejects_logs_that_are_not_a_user() {
    let (user, created) = new_user();
    let (_, lock) = run(&user, Command::Lock).unwrap().unwrap();
    assert!(matches!(
        User::replay([lock.clone()]),
        Err(ReplayError::NotCreatedFirst(_))
    ));
    assert!(matches!(
        User::replay([created.clone(), lock.clone(), lock]),
        Err(ReplayError::SequenceGap { .. })
    ));
    assert!(matches!(
        User::replay([
            created.clone(),
            UserEvent {
                sequence: 2,
                ..created
            }
        ]),
        Err(ReplayError::CreatedTwice { .. })
    ));
    assert_eq!(User::replay(Vec::new()), Ok(None));
}

// --- property tests -------------------------------------------------------------------

fn any_patch() -> impl Strategy<Value = UserPatch> {
    (
        proptest::option::of(prop_oneof![Just("a"), Just("b")]),
        proptest::option::of(0u8..3),
        proptest::option::of((prop_oneof![Just("a@x.org"), Just("b@x.org")], any::<bool>())),
    )
        .prop_map(|(schema, data, email)| UserPatch {
            schema_id: schema.map(|s| SchemaId::new(s).unwrap()),
            data: data.map(|n| UserData::from_value(json!({ "n": n })).unwrap()),
            email: email.map(|(address, verified)| EmailContact {
                address: Email::new(address).unwrap(),
                verified,
            }),
            phone: None,
        })
}

fn any_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => Just(Command::Lock),
        4 => Just(Command::Unlock),
        4 => Just(Command::Deactivate),
        4 => Just(Command::Activate),
        1 => Just(Command::Delete),
        3 => any_patch().prop_map(Command::Patch),
    ]
}

/// The state table of docs/api.md, written independently of the implementation.
fn expected_refusal(lifecycle: Lifecycle, locked: bool, command: &Command) -> Option<Refusal> {
    if lifecycle == Lifecycle::Deleted {
        return Some(Refusal::Deleted);
    }
    match command {
        Command::Lock if locked => Some(Refusal::AlreadyLocked),
        Command::Unlock if !locked => Some(Refusal::NotLocked),
        Command::Deactivate if lifecycle != Lifecycle::Active => Some(Refusal::AlreadyInactive),
        Command::Activate if lifecycle != Lifecycle::Inactive => Some(Refusal::NotInactive),
        _ => None,
    }
}

proptest! {
    #[test]
    fn random_operation_sequences_keep_the_invariants(
        steps in proptest::collection::vec((any_command(), -5_000i64..5_000), 0..60)
    ) {
        let (mut user, first) = new_user();
        let mut log = vec![first];
        let (mut lifecycle, mut locked) = (Lifecycle::Active, false);
        let mut now = 1_000i64;

        for (command, clock_step) in steps {
            now += clock_step; // the wall clock may also step backwards
            let outcome = user.execute(&command, at(now), None);
            match expected_refusal(lifecycle, locked, &command) {
                Some(refusal) => prop_assert_eq!(outcome, Err(refusal)),
                None => {
                    let outcome = outcome.expect("the table allows this command");
                    match (&command, outcome) {
                        (Command::Patch(_), None) => {}
                        (_, None) => prop_assert!(false, "{} must append an event", command.name()),
                        (_, Some((next, event))) => {
                            prop_assert_eq!(event.sequence, user.sequence + 1);
                            match command {
                                Command::Lock => locked = true,
                                Command::Unlock => locked = false,
                                Command::Deactivate => lifecycle = Lifecycle::Inactive,
                                Command::Activate => lifecycle = Lifecycle::Active,
                                Command::Delete => lifecycle = Lifecycle::Deleted,
                                Command::Patch(_)
                                | Command::SetPassword { .. }
                                | Command::RemovePassword
                                | Command::RequestPasswordReset { .. }
                                | Command::FailPasswordCode
                                | Command::AddContactCode { .. }
                                | Command::VerifyContact(_)
                                | Command::FailContactCode(_) => {}
                            }
                            log.push(event);
                            user = next;
                        }
                    }
                }
            }

            prop_assert_eq!((user.lifecycle, user.lock.is_some()), (lifecycle, locked));
            let reported = match (lifecycle, locked) {
                (Lifecycle::Deleted, _) => UserState::Deleted,
                (Lifecycle::Inactive, _) => UserState::Inactive,
                (Lifecycle::Active, true) => UserState::Locked,
                (Lifecycle::Active, false) => UserState::Active,
            };
            prop_assert_eq!(user.state(), reported);
            prop_assert!(user.created <= user.changed);
            prop_assert_eq!(user.sequence, log.len() as u64);
            prop_assert_eq!(User::replay(log.clone()), Ok(Some(user.clone())));
        }
    }
}
