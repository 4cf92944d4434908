use super::*;

fn rules() -> ComplexitySettings {
    ComplexitySettings {
        min_length: 10,
        requires_uppercase: true,
        requires_lowercase: true,
        requires_number: true,
        requires_symbol: true,
    }
}

fn rule_broken(password: &str, settings: &ComplexitySettings) -> Option<&'static str> {
    match check_complexity(password, settings) {
        Ok(()) => None,
        Err(ServiceError::PasswordTooWeak { rule, .. }) => Some(rule),
        Err(other) => Some(other.reason()),
    }
}

#[test]
fn each_complexity_rule_is_named_when_broken() {
    let all = rules();
    assert_eq!(rule_broken("Sh0rt!", &all), Some("minLength"));
    assert_eq!(rule_broken("lowercase1!x", &all), Some("requiresUppercase"));
    assert_eq!(rule_broken("UPPERCASE1!X", &all), Some("requiresLowercase"));
    assert_eq!(rule_broken("NoDigitsHere!", &all), Some("requiresNumber"));
    assert_eq!(rule_broken("NoSymbols123", &all), Some("requiresSymbol"));
    assert_eq!(rule_broken("Good-Pass-123", &all), None);
    // Characters, not bytes: eight letters of a non-Latin script are eight.
    assert_eq!(rule_broken("пароль12", &ComplexitySettings::DEFAULT), None);
}

#[test]
fn overlong_passwords_are_refused_before_hashing() {
    let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
    assert_eq!(
        rule_broken(&long, &ComplexitySettings::DEFAULT),
        Some("PASSWORD_TOO_LONG")
    );
    assert_eq!(
        rule_broken(
            &"a".repeat(MAX_PASSWORD_BYTES),
            &ComplexitySettings::DEFAULT
        ),
        None
    );
}

// --- the login use cases against mocked ports, with a clock the test moves ------------

mod with_mocks {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use userd_domain::authz::Role;
    use userd_domain::password::{LockoutPolicy, PasswordCode};
    use userd_ports::clock::MockClock;
    use userd_ports::error::ErrorKind;
    use userd_ports::passwords::{MockPasswordHasher, Verification};
    use userd_ports::sessions::MockSessionRepository;
    use userd_ports::settings::MockSettingsRepository;

    use super::*;
    use crate::Ports;
    use crate::users::tests::{Mocks, NOW, caller_with, stored_user};

    const MINUTE: i64 = 60_000_000;

    /// A clock that reads what the test sets: expiry is tested without sleeping.
    #[derive(Clone)]
    struct TestClock(Arc<AtomicI64>);

    impl TestClock {
        fn at(micros: i64) -> Self {
            TestClock(Arc::new(AtomicI64::new(micros)))
        }

        fn set(&self, micros: i64) {
            self.0.store(micros, Ordering::SeqCst);
        }

        fn port(&self) -> MockClock {
            let now = self.0.clone();
            let mut clock = MockClock::new();
            clock
                .expect_now()
                .returning(move || Timestamp::from_unix_micros(now.load(Ordering::SeqCst)));
            clock
        }
    }

    fn hash() -> PasswordHash {
        PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    }

    fn with_password(user: User) -> User {
        let command = Command::SetPassword {
            hash: hash(),
            change_required: false,
        };
        let at = Timestamp::from_unix_micros(NOW - 900);
        user.execute(&command, at, None).unwrap().unwrap().0
    }

    /// A user locked out at NOW by one failed check, for a minute.
    fn locked_out_for_a_minute() -> User {
        let policy = LockoutPolicy {
            max_password_attempts: 1,
            lockout_duration: Some(std::time::Duration::from_secs(60)),
        };
        let wrong = Verified {
            hash: &hash(),
            matches: false,
        };
        let user = with_password(stored_user("ada", "home"));
        let check = user
            .record_password_check(wrong, &policy, Timestamp::from_unix_micros(NOW), None)
            .unwrap();
        assert!(check.next.lock.is_some());
        check.next
    }

    fn frontend() -> Caller {
        caller_with(&[Role::IamLoginClient], &[])
    }

    fn login(password: &str) -> SessionChecks {
        SessionChecks {
            user: Some(SessionUser::Id(UserId::new("ada").unwrap())),
            password: Some(PlainPassword::new(password.to_owned())),
        }
    }

    struct LoginMocks {
        base: Mocks,
        hasher: MockPasswordHasher,
        settings: MockSettingsRepository,
        sessions: MockSessionRepository,
    }

    impl LoginMocks {
        fn new(user: Option<User>) -> Self {
            let mut settings = MockSettingsRepository::new();
            settings.expect_lockout_applying_to().returning(|_| {
                Ok(Some(LockoutSettings {
                    max_password_attempts: 1,
                    max_otp_attempts: 0,
                    lockout_duration: std::time::Duration::from_secs(60),
                }))
            });
            LoginMocks {
                base: Mocks::new().finding(user),
                hasher: MockPasswordHasher::new(),
                settings,
                sessions: MockSessionRepository::new(),
            }
        }

        fn build(self, clock: &TestClock) -> UseCases {
            let base = self.base;
            UseCases::new(Ports {
                users: Arc::new(base.users),
                authenticator: Arc::new(base.authenticator),
                organizations: Arc::new(base.organizations),
                members: Arc::new(base.members),
                tokens: Arc::new(base.tokens),
                health: Arc::new(base.health),
                clock: Arc::new(clock.port()),
                ids: Arc::new(base.ids),
                hasher: Arc::new(self.hasher),
                settings: Arc::new(self.settings),
                sessions: Arc::new(self.sessions),
                instance_id: "instance".to_owned(),
            })
        }
    }

    #[tokio::test]
    async fn a_timed_lockout_refuses_until_its_end_without_verifying() {
        let clock = TestClock::at(NOW + MINUTE - 1);
        let mut mocks = LoginMocks::new(Some(locked_out_for_a_minute()));
        mocks.hasher.expect_verify().never();
        mocks.hasher.expect_verify_nothing().never();
        mocks.base.users.expect_append_all().never();
        mocks.sessions.expect_create_session().never();
        let error = mocks
            .build(&clock)
            .create_session(&frontend(), login("right"), None)
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::FailedPrecondition, "USER_LOCKED")
        );
    }

    #[tokio::test]
    async fn a_timed_lockout_ends_when_the_clock_reaches_its_end() {
        let clock = TestClock::at(NOW + MINUTE);
        let mut mocks = LoginMocks::new(Some(locked_out_for_a_minute()));
        mocks.hasher.expect_verify().times(1).returning(|_, _| {
            Ok(Verification {
                matches: true,
                outdated: false,
            })
        });
        mocks
            .base
            .users
            .expect_append_all()
            .times(1)
            .withf(|next, events| {
                let types: Vec<&str> = events.iter().map(|e| e.change.event_type()).collect();
                next.lock.is_none()
                    && next.failed_password_checks == 0
                    && types.first() == Some(&"user.unlocked")
            })
            .returning(|_, _| Ok(()));
        mocks
            .sessions
            .expect_create_session()
            .times(1)
            .returning(|_| Ok(()));
        let issued = mocks
            .build(&clock)
            .create_session(&frontend(), login("right"), None)
            .await
            .unwrap();
        assert!(issued.token.expose().starts_with(SESSION_TOKEN_PREFIX));
    }

    #[tokio::test]
    async fn an_unknown_user_costs_a_decoy_verification_and_reads_as_a_wrong_password() {
        let clock = TestClock::at(NOW);
        let mut mocks = LoginMocks::new(None);
        mocks.hasher.expect_verify().never();
        mocks
            .hasher
            .expect_verify_nothing()
            .times(1)
            .returning(|_| Ok(()));
        mocks.sessions.expect_create_session().never();
        let error = mocks
            .build(&clock)
            .create_session(&frontend(), login("anything"), None)
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::InvalidArgument, "INVALID_CREDENTIALS")
        );
    }

    #[tokio::test]
    async fn a_reset_code_expires_by_the_clock_and_nothing_is_written() {
        let code = "ABCDEFGH";
        let user = User {
            password_code: Some(PasswordCode {
                hash: hash_code(code),
                expires: Timestamp::from_unix_micros(NOW + MINUTE),
                failed_attempts: 0,
            }),
            ..with_password(stored_user("ada", "home"))
        };
        let request = || SetPassword {
            password: NewPassword::Hash("$2b$04$imported".to_owned()),
            change_required: false,
            proof: PasswordProof::VerificationCode(code.to_owned()),
        };
        let clock = TestClock::at(NOW + MINUTE);
        let mut mocks = LoginMocks::new(Some(user.clone()));
        mocks
            .hasher
            .expect_import()
            .returning(|encoded| Ok(PasswordHash::new(encoded)));
        mocks.base.users.expect_append().never();
        let service = mocks.build(&clock);
        let admin = caller_with(&[Role::IamOwner], &[]);
        let target = UserRef::new(UserId::new("ada").unwrap());
        let error = service
            .set_password(&admin, &target, request())
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::FailedPrecondition, "CODE_EXPIRED")
        );

        // A microsecond earlier the same code would have been taken.
        clock.set(NOW + MINUTE - 1);
        let mut mocks = LoginMocks::new(Some(user));
        mocks
            .hasher
            .expect_import()
            .returning(|encoded| Ok(PasswordHash::new(encoded)));
        mocks
            .base
            .users
            .expect_append()
            .times(1)
            .withf(|next, _| next.password_code.is_none())
            .returning(|_, _| Ok(()));
        mocks
            .build(&clock)
            .set_password(&admin, &target, request())
            .await
            .unwrap();
    }
}
