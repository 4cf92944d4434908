//! Passwords, failed checks and lockout: examples, then the rules as properties over any
//! sequence of checks, unlocks, password changes and clock steps.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::password::{CodeRefusal, LockCause, MAX_CODE_ATTEMPTS};

const SECOND: i64 = 1_000_000;

fn at(micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(micros)
}

fn hash(text: &str) -> PasswordHash {
    PasswordHash::new(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${text}"))
}

fn user_with_password() -> User {
    let created = UserCreated {
        org_id: OrgId::new("org-1").unwrap(),
        schema_id: None,
        data: UserData::from_value(json!({})).unwrap(),
        contact: Contact::default(),
        usernames: Vec::new(),
    };
    let (user, _) = User::create(UserId::new("user-1").unwrap(), created, at(0), None).unwrap();
    let set = Command::SetPassword {
        hash: hash("first"),
        change_required: false,
    };
    user.execute(&set, at(0), None).unwrap().unwrap().0
}

fn policy(limit: u32, lockout_seconds: Option<u64>) -> LockoutPolicy {
    LockoutPolicy {
        max_password_attempts: limit,
        lockout_duration: lockout_seconds.map(Duration::from_secs),
    }
}

/// Checks `user`'s current password at `now`, right or wrong.
fn check(
    user: &User,
    right: bool,
    policy: &LockoutPolicy,
    now: i64,
) -> Result<PasswordCheck, CheckRefusal> {
    let current = user.password_to_check(at(now))?.clone();
    let verified = Verified {
        hash: &current,
        matches: right,
    };
    user.record_password_check(verified, policy, at(now), None)
}

fn types(events: &[UserEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.change.event_type()).collect()
}

#[test]
fn the_failure_that_reaches_the_limit_locks_in_the_same_batch() {
    let policy = policy(3, None);
    let mut user = user_with_password();
    for n in 1..=2 {
        let outcome = check(&user, false, &policy, n).unwrap();
        assert_eq!(types(&outcome.events), ["user.password.check.failed"]);
        assert!(!outcome.passed);
        user = outcome.next;
        assert_eq!(user.failed_password_checks, n as u32);
    }
    let outcome = check(&user, false, &policy, 3).unwrap();
    assert_eq!(
        types(&outcome.events),
        ["user.password.check.failed", "user.locked"]
    );
    let locked = outcome.next;
    assert_eq!(locked.lock.map(|l| l.cause), Some(LockCause::Lockout));
    assert_eq!(locked.state_at(at(4)), UserState::Locked);
    // Locked: even the right password is refused, without counting.
    assert_eq!(check(&locked, true, &policy, 5), Err(CheckRefusal::Locked));
}

#[test]
fn unlock_ends_a_lockout_and_resets_the_counter() {
    let policy = policy(1, None);
    let locked = check(&user_with_password(), false, &policy, 1)
        .unwrap()
        .next;
    let (unlocked, event) = locked
        .execute(&Command::Unlock, at(2), None)
        .unwrap()
        .unwrap();
    assert_eq!(event.change, UserChange::Unlocked(UnlockCause::Admin));
    assert_eq!(unlocked.failed_password_checks, 0);
    assert!(check(&unlocked, true, &policy, 3).unwrap().passed);
}

#[test]
fn a_timed_lockout_ends_by_itself_and_its_end_is_recorded_when_acted_on() {
    let policy = policy(2, Some(60));
    let mut user = user_with_password();
    for n in 1..=2 {
        user = check(&user, false, &policy, n).unwrap().next;
    }
    assert_eq!(user.lock.and_then(|l| l.until), Some(at(2 + 60 * SECOND)));
    assert_eq!(user.state_at(at(2 + 60 * SECOND - 1)), UserState::Locked);
    let later = 2 + 60 * SECOND;
    assert_eq!(user.state_at(at(later)), UserState::Active);
    assert_eq!(user.clone().seen_at(at(later)).state(), UserState::Active);
    // Unlocking a lock that has ended is refused like any unlocked user's.
    assert_eq!(
        user.execute(&Command::Unlock, at(later), None),
        Err(Refusal::NotLocked)
    );

    let outcome = check(&user, true, &policy, later).unwrap();
    assert!(outcome.passed);
    assert_eq!(types(&outcome.events), ["user.unlocked"]);
    assert_eq!(
        outcome.events[0].change,
        UserChange::Unlocked(UnlockCause::LockoutExpired)
    );
    assert_eq!(outcome.next.failed_password_checks, 0);
    assert_eq!(outcome.next.lock, None);
}

#[test]
fn an_admin_lock_does_not_expire_and_replaces_an_ended_lockout() {
    let policy = policy(1, Some(1));
    let user = check(&user_with_password(), false, &policy, 0)
        .unwrap()
        .next;
    let ended = 10 * SECOND;
    let (locked, event) = user
        .execute(&Command::Lock, at(ended), None)
        .unwrap()
        .unwrap();
    assert_eq!(event.change, UserChange::Locked(Lock::ADMIN));
    assert_eq!(locked.state_at(at(i64::MAX)), UserState::Locked);
}

#[test]
fn a_success_after_failures_is_recorded_and_a_plain_success_is_not() {
    let policy = policy(5, None);
    let user = user_with_password();
    let plain = check(&user, true, &policy, 1).unwrap();
    assert!(plain.passed && plain.events.is_empty());

    let failed = check(&user, false, &policy, 1).unwrap().next;
    let outcome = check(&failed, true, &policy, 2).unwrap();
    assert_eq!(types(&outcome.events), ["user.password.check.succeeded"]);
    assert_eq!(outcome.next.failed_password_checks, 0);
}

#[test]
fn who_may_be_checked() {
    let policy = policy(5, None);
    let user = user_with_password();
    let (without, _) = user
        .execute(&Command::RemovePassword, at(1), None)
        .unwrap()
        .unwrap();
    assert_eq!(
        without.password_to_check(at(2)),
        Err(CheckRefusal::NoPassword)
    );
    assert_eq!(
        without.execute(&Command::RemovePassword, at(2), None),
        Err(Refusal::NoPassword)
    );
    let (inactive, _) = user
        .execute(&Command::Deactivate, at(1), None)
        .unwrap()
        .unwrap();
    assert_eq!(
        check(&inactive, true, &policy, 2),
        Err(CheckRefusal::Inactive)
    );

    // A verdict about a hash the user no longer has counts for nothing.
    let old = user.password_to_check(at(1)).unwrap().clone();
    let (changed, _) = user
        .execute(
            &Command::SetPassword {
                hash: hash("second"),
                change_required: true,
            },
            at(2),
            None,
        )
        .unwrap()
        .unwrap();
    let stale = Verified {
        hash: &old,
        matches: true,
    };
    assert_eq!(
        changed.record_password_check(stale, &policy, at(3), None),
        Err(CheckRefusal::PasswordChanged)
    );
    assert_eq!(
        changed.password.as_ref().map(|p| p.change_required),
        Some(true)
    );
    assert_eq!(changed.password.as_ref().map(|p| p.changed), Some(at(2)));
}

#[test]
fn a_limit_of_zero_never_locks() {
    let policy = policy(0, None);
    let mut user = user_with_password();
    for n in 1..=50 {
        user = check(&user, false, &policy, n).unwrap().next;
    }
    assert_eq!(user.lock, None);
    assert_eq!(user.failed_password_checks, 50);
}

fn run(user: &User, command: Command, now: i64) -> User {
    user.execute(&command, at(now), None).unwrap().unwrap().0
}

fn with_code(user: &User, hash: &str, expires: i64) -> User {
    let request = Command::RequestPasswordReset {
        code_hash: hash.to_owned(),
        expires: at(expires),
    };
    run(user, request, 0)
}

#[test]
fn a_reset_code_is_single_use() {
    let user = with_code(&user_with_password(), "h1", 100);
    assert_eq!(user.check_password_code("h1", at(1)), Ok(()));
    let set = Command::SetPassword {
        hash: hash("new"),
        change_required: false,
    };
    let used = run(&user, set, 2);
    assert_eq!(used.password_code, None);
    assert_eq!(
        used.check_password_code("h1", at(3)),
        Err(CodeRefusal::Invalid)
    );
}

#[test]
fn a_reset_code_expires_and_a_new_one_voids_the_old() {
    let user = with_code(&user_with_password(), "h1", 100);
    assert_eq!(
        user.check_password_code("h1", at(100)),
        Err(CodeRefusal::Expired)
    );
    let renewed = with_code(&user, "h2", 200);
    assert_eq!(
        renewed.check_password_code("h1", at(1)),
        Err(CodeRefusal::Invalid)
    );
    assert_eq!(renewed.check_password_code("h2", at(1)), Ok(()));
}

#[test]
fn five_wrong_codes_exhaust_a_code() {
    let mut user = with_code(&user_with_password(), "h1", 100);
    for _ in 0..MAX_CODE_ATTEMPTS {
        assert_eq!(
            user.check_password_code("wrong", at(1)),
            Err(CodeRefusal::Invalid)
        );
        user = run(&user, Command::FailPasswordCode, 1);
    }
    // Right or wrong, it is dead.
    assert_eq!(
        user.check_password_code("h1", at(1)),
        Err(CodeRefusal::Exhausted)
    );
    assert_eq!(
        user.check_password_code("wrong", at(1)),
        Err(CodeRefusal::Exhausted)
    );
    // Without an outstanding code a failure records nothing.
    let plain = user_with_password();
    assert_eq!(
        plain.execute(&Command::FailPasswordCode, at(1), None),
        Ok(None)
    );
}

#[derive(Clone, Debug)]
enum Step {
    Check {
        right: bool,
    },
    Unlock,
    Lock,
    SetPassword,
    /// Moves the clock on by this many seconds.
    Wait(i64),
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => any::<bool>().prop_map(|right| Step::Check { right }),
        1 => Just(Step::Unlock),
        1 => Just(Step::Lock),
        1 => Just(Step::SetPassword),
        2 => (0i64..120).prop_map(Step::Wait),
    ]
}

proptest! {
    #[test]
    fn lockout_invariants_hold_for_any_sequence(
        limit in 1u32..6,
        lockout_seconds in proptest::option::of(1u64..90),
        steps in proptest::collection::vec(any_step(), 0..80),
    ) {
        let policy = policy(limit, lockout_seconds);
        let mut user = user_with_password();
        let mut log: Vec<UserEvent> = Vec::new();
        let mut now = SECOND;
        for (n, step) in steps.into_iter().enumerate() {
            let before = user.clone();
            let outcome = match step {
                Step::Wait(seconds) => {
                    now += seconds * SECOND;
                    continue;
                }
                Step::Check { right } => {
                    let was_locked = before.state_at(at(now)) == UserState::Locked;
                    match check(&before, right, &policy, now) {
                        Ok(outcome) => {
                            prop_assert!(!was_locked, "a locked user was checked");
                            prop_assert_eq!(outcome.passed, right);
                            if right {
                                prop_assert_eq!(outcome.next.failed_password_checks, 0);
                            }
                            Some((outcome.next, outcome.events))
                        }
                        Err(refusal) => {
                            prop_assert!(was_locked);
                            prop_assert_eq!(refusal, CheckRefusal::Locked);
                            None
                        }
                    }
                }
                Step::Unlock | Step::Lock | Step::SetPassword => {
                    let command = match step {
                        Step::Unlock => Command::Unlock,
                        Step::Lock => Command::Lock,
                        _ => Command::SetPassword { hash: hash(&format!("h{n}")), change_required: false },
                    };
                    match before.execute(&command, at(now), None) {
                        Ok(Some((next, event))) => {
                            if !matches!(command, Command::Lock) {
                                prop_assert_eq!(next.failed_password_checks, 0);
                            }
                            Some((next, vec![event]))
                        }
                        Ok(None) => None,
                        Err(_) => None,
                    }
                }
            };
            if let Some((next, events)) = outcome {
                log.extend(events);
                user = next;
            }
            prop_assert!(user.failed_password_checks <= limit);
            if let Some(lock) = user.lock
                && lock.cause == LockCause::Admin
            {
                prop_assert_eq!(lock.until, None);
                prop_assert_eq!(user.state_at(at(i64::MAX)), UserState::Locked);
            }
        }
        let mut replayed = user_with_password();
        for event in &log {
            replayed.apply(event).expect("the log replays");
        }
        prop_assert_eq!(replayed, user);
    }
}
