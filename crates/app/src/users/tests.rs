//! The use cases against mocked ports: which checks run, in which order, and how every
//! failure maps to a service error.

use std::collections::BTreeMap;
use std::sync::Arc;

use mockall::Sequence;
use mockall::predicate::{always, eq};
use serde_json::json;
use userd_domain::authz::{Role, RoleSet};
use userd_domain::user::{UserChange, UserPatch};
use userd_domain::values::Email;

use super::*;
use crate::Ports;
use userd_domain::Timestamp;
use userd_domain::user::Contact;
use userd_domain::values::{SchemaId, UserData, Username};
use userd_ports::clock::MockClock;
use userd_ports::error::ErrorKind;
use userd_ports::ids::MockIdGenerator;
use userd_ports::repository::{
    AuthenticatedToken, MockAuthenticator, MockHealthProbe, MockMembershipRepository,
    MockOrganizationRepository, MockTokenRepository, MockUserRepository,
};
use userd_ports::service::{NewUsername, Owner, OwnerType};

pub(crate) const NOW: i64 = 1_750_000_000_000_000;

pub(crate) fn org(id: &str) -> OrgId {
    OrgId::new(id).unwrap()
}

pub(crate) fn user_id(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

pub(crate) fn caller_with(instance: &[Role], in_org: &[(&str, &[Role])]) -> Caller {
    Caller {
        user_id: user_id("caller"),
        org_id: org("home"),
        roles: userd_domain::authz::Memberships {
            instance: RoleSet::new(instance.iter().copied()),
            organizations: in_org
                .iter()
                .map(|(id, roles)| (org(id), RoleSet::new(roles.iter().copied())))
                .collect::<BTreeMap<_, _>>(),
        },
        ceiling: None,
    }
}

fn admin() -> Caller {
    caller_with(&[Role::IamOwner], &[])
}

pub(crate) fn stored_user(id: &str, org_id: &str) -> User {
    let created = UserCreated {
        org_id: org(org_id),
        schema_id: None,
        data: UserData::from_value(json!({"givenName": "Ada"})).unwrap(),
        contact: Contact::default(),
        usernames: Vec::new(),
    };
    User::create(
        user_id(id),
        created,
        Timestamp::from_unix_micros(NOW - 1_000),
        None,
    )
    .unwrap()
    .0
}

fn locked(user: User) -> User {
    user.execute(&Command::Lock, Timestamp::from_unix_micros(NOW - 500), None)
        .unwrap()
        .unwrap()
        .0
}

pub(crate) struct Mocks {
    pub users: MockUserRepository,
    pub authenticator: MockAuthenticator,
    pub organizations: MockOrganizationRepository,
    pub members: MockMembershipRepository,
    pub tokens: MockTokenRepository,
    pub health: MockHealthProbe,
    pub ids: MockIdGenerator,
}

impl Mocks {
    pub fn new() -> Self {
        let mut ids = MockIdGenerator::new();
        let mut next = 1000u64;
        ids.expect_next_id().returning(move || {
            next += 1;
            next.to_string()
        });
        let mut authenticator = MockAuthenticator::new();
        authenticator.expect_forget_user().return_const(());
        Mocks {
            users: MockUserRepository::new(),
            authenticator,
            organizations: MockOrganizationRepository::new(),
            members: MockMembershipRepository::new(),
            tokens: MockTokenRepository::new(),
            health: MockHealthProbe::new(),
            ids,
        }
    }

    pub fn finding(mut self, user: Option<User>) -> Self {
        self.users
            .expect_find()
            .returning(move |_| Ok(user.clone()));
        self
    }

    pub fn never_writing(mut self) -> Self {
        self.users.expect_append().never();
        self
    }

    pub fn build(self) -> UseCases {
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .returning(|| Timestamp::from_unix_micros(NOW));
        let sessions = userd_ports::sessions::MockSessionRepository::new();
        UseCases::new(Ports {
            users: Arc::new(self.users),
            authenticator: Arc::new(self.authenticator),
            organizations: Arc::new(self.organizations),
            members: Arc::new(self.members),
            tokens: Arc::new(self.tokens),
            health: Arc::new(self.health),
            clock: Arc::new(clock),
            ids: Arc::new(self.ids),
            hasher: Arc::new(userd_ports::passwords::MockPasswordHasher::new()),
            settings: Arc::new(userd_ports::settings::MockSettingsRepository::new()),
            sessions: Arc::new(sessions),
            instance_id: "instance".to_owned(),
        })
        .with_write_attempts(4)
    }
}

pub(crate) fn target(id: &str) -> UserRef {
    UserRef {
        id: user_id(id),
        expected_org: None,
        if_match: None,
    }
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("connection refused".into())
}

// --- authenticate ------------------------------------------------------------------

#[tokio::test]
async fn no_credentials_are_unauthenticated_without_a_lookup() {
    let mut mocks = Mocks::new();
    mocks.authenticator.expect_caller_for_token().never();
    let result = mocks.build().authenticate(&Credentials::None).await;
    assert!(matches!(result, Err(ServiceError::Unauthenticated)));
}

#[tokio::test]
async fn tokens_are_looked_up_by_hash_only() {
    let mut mocks = Mocks::new();
    mocks
        .authenticator
        .expect_caller_for_token()
        .with(
            eq(hash_token("secret")),
            eq(Timestamp::from_unix_micros(NOW)),
        )
        .times(1)
        .returning(|_, _| {
            Ok(Some(AuthenticatedToken {
                caller: admin(),
                expires_at: None,
            }))
        });
    let caller = mocks
        .build()
        .authenticate(&Credentials::Bearer("secret".into()))
        .await
        .unwrap();
    assert_eq!(caller, admin());
}

#[tokio::test]
async fn unknown_tokens_are_unauthenticated_and_outages_unavailable() {
    let mut mocks = Mocks::new();
    mocks
        .authenticator
        .expect_caller_for_token()
        .times(1)
        .returning(|_, _| Ok(None));
    let result = mocks
        .build()
        .authenticate(&Credentials::Bearer("x".into()))
        .await;
    assert_eq!(
        result.map_err(|e| e.kind()),
        Err(ErrorKind::Unauthenticated)
    );

    let mut mocks = Mocks::new();
    mocks
        .authenticator
        .expect_caller_for_token()
        .returning(|_, _| Err(unavailable()));
    let result = mocks
        .build()
        .authenticate(&Credentials::Bearer("x".into()))
        .await;
    assert_eq!(result.map_err(|e| e.kind()), Err(ErrorKind::Unavailable));
}

// --- order of checks on an existing user --------------------------------------------

#[tokio::test]
async fn load_then_authorize_then_guard_then_write() {
    let mut mocks = Mocks::new();
    let mut order = Sequence::new();
    let user = stored_user("u1", "acme");
    mocks
        .users
        .expect_find()
        .with(eq(user_id("u1")))
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_| Ok(Some(user.clone())));
    mocks
        .users
        .expect_append()
        .withf(|state, event| {
            event.change == UserChange::Locked(userd_domain::password::Lock::ADMIN)
                && event.sequence == 2
                && event.actor == Some(user_id("caller"))
                && event.at == Timestamp::from_unix_micros(NOW)
                && state.lock.is_some()
                && state.sequence == 2
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));

    let details = mocks
        .build()
        .execute(&admin(), &target("u1"), Command::Lock)
        .await
        .unwrap();
    assert_eq!(details.id, "u1");
    assert_eq!(details.changed, Timestamp::from_unix_micros(NOW));
    assert_eq!(details.created, Timestamp::from_unix_micros(NOW - 1_000));
    assert_eq!(
        details.owner,
        Owner {
            kind: OwnerType::Organization,
            id: "acme".into()
        }
    );
}

#[tokio::test]
async fn changes_of_standing_forget_cached_tokens_and_patches_do_not() {
    for (command, forgets) in [
        (Command::Lock, true),
        (Command::Deactivate, true),
        (Command::Delete, true),
        (
            Command::Patch(UserPatch {
                schema_id: Some(SchemaId::new("s").unwrap()),
                ..UserPatch::default()
            }),
            false,
        ),
    ] {
        let mut mocks = Mocks::new().finding(Some(stored_user("u1", "acme")));
        mocks.authenticator = MockAuthenticator::new();
        mocks
            .authenticator
            .expect_forget_user()
            .with(eq(user_id("u1")))
            .times(usize::from(forgets))
            .return_const(());
        mocks.users.expect_append().returning(|_, _| Ok(()));
        mocks
            .build()
            .execute(&admin(), &target("u1"), command)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_unknown_user_is_not_found_and_nothing_is_written() {
    let service = Mocks::new().finding(None).never_writing().build();
    let error = service
        .execute(&admin(), &target("ghost"), Command::Unlock)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.reason(), "USER_NOT_FOUND");
}

#[tokio::test]
async fn a_user_out_of_reach_is_indistinguishable_from_a_missing_one() {
    let outsider = caller_with(&[], &[("other", &[Role::OrgOwner])]);
    let hidden = Mocks::new()
        .finding(Some(locked(stored_user("u1", "acme"))))
        .never_writing()
        .build()
        .execute(&outsider, &target("u1"), Command::Unlock)
        .await
        .unwrap_err();
    let missing = Mocks::new()
        .finding(None)
        .never_writing()
        .build()
        .execute(&outsider, &target("u1"), Command::Unlock)
        .await
        .unwrap_err();
    assert_eq!(
        (
            hidden.kind(),
            hidden.reason(),
            hidden.public_message(),
            hidden.metadata()
        ),
        (
            missing.kind(),
            missing.reason(),
            missing.public_message(),
            missing.metadata()
        )
    );
}

#[tokio::test]
async fn permission_is_checked_before_the_state_machine() {
    // The user is not locked, so unlock would be refused by the guard; a viewer must
    // learn nothing of that and is denied first.
    let viewer = caller_with(&[], &[("acme", &[Role::OrgUserViewer])]);
    let error = Mocks::new()
        .finding(Some(stored_user("u1", "acme")))
        .never_writing()
        .build()
        .execute(&viewer, &target("u1"), Command::Unlock)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        error.metadata(),
        vec![("permission", "user.write".to_owned())]
    );
}

#[tokio::test]
async fn delete_needs_user_delete_and_reading_needs_user_read() {
    let writer_without_delete = caller_with(&[], &[]);
    // A caller with no role at all does not see the user.
    let error = Mocks::new()
        .finding(Some(stored_user("u1", "acme")))
        .never_writing()
        .build()
        .execute(&writer_without_delete, &target("u1"), Command::Delete)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);

    let viewer = caller_with(&[], &[("acme", &[Role::OrgUserViewer])]);
    let service = Mocks::new()
        .finding(Some(stored_user("u1", "acme")))
        .never_writing()
        .build();
    let error = service
        .execute(&viewer, &target("u1"), Command::Delete)
        .await
        .unwrap_err();
    assert_eq!(
        error.metadata(),
        vec![("permission", "user.delete".to_owned())]
    );
    assert_eq!(
        service.get_user(&viewer, &target("u1")).await.unwrap().id,
        user_id("u1")
    );
}

#[tokio::test]
async fn guard_refusals_map_to_failed_precondition_and_write_nothing() {
    let cases = [
        (
            stored_user("u1", "acme"),
            Command::Unlock,
            "USER_NOT_LOCKED",
        ),
        (
            locked(stored_user("u1", "acme")),
            Command::Lock,
            "USER_ALREADY_LOCKED",
        ),
        (
            stored_user("u1", "acme"),
            Command::Activate,
            "USER_NOT_INACTIVE",
        ),
    ];
    for (user, command, reason) in cases {
        let error = Mocks::new()
            .finding(Some(user))
            .never_writing()
            .build()
            .execute(&admin(), &target("u1"), command)
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::FailedPrecondition, reason)
        );
        assert_eq!(error.metadata(), vec![("userId", "u1".to_owned())]);
    }
}

#[tokio::test]
async fn a_user_in_another_organization_than_expected_is_not_found() {
    let error = Mocks::new()
        .finding(Some(stored_user("u1", "acme")))
        .never_writing()
        .build()
        .get_user(
            &admin(),
            &UserRef {
                expected_org: Some(org("globex")),
                ..target("u1")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "USER_NOT_FOUND");
}

#[tokio::test]
async fn a_patch_that_changes_nothing_writes_nothing() {
    let user = stored_user("u1", "acme");
    let patch = UserPatch {
        data: Some(user.data.clone()),
        ..UserPatch::default()
    };
    let details = Mocks::new()
        .finding(Some(user.clone()))
        .never_writing()
        .build()
        .execute(&admin(), &target("u1"), Command::Patch(patch))
        .await
        .unwrap();
    assert_eq!(details, ResourceDetails::of_user(&user));
}

// --- optimistic concurrency ---------------------------------------------------------

#[tokio::test]
async fn a_lost_race_reloads_and_rechecks_the_guard() {
    let mut mocks = Mocks::new();
    let mut loads = 0;
    mocks.users.expect_find().times(2).returning(move |_| {
        loads += 1;
        // The second load sees the winner's lock.
        let user = stored_user("u1", "acme");
        Ok(Some(if loads == 1 { user } else { locked(user) }))
    });
    mocks
        .users
        .expect_append()
        .times(1)
        .returning(|_, _| Err(StoreError::Conflict));
    let error = mocks
        .build()
        .execute(&admin(), &target("u1"), Command::Lock)
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "USER_ALREADY_LOCKED");
}

#[tokio::test]
async fn endless_races_end_in_aborted() {
    let mut mocks = Mocks::new().finding(Some(stored_user("u1", "acme")));
    mocks
        .users
        .expect_append()
        .times(4)
        .returning(|_, _| Err(StoreError::Conflict));
    let error = mocks
        .build()
        .execute(&admin(), &target("u1"), Command::Deactivate)
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.reason()),
        (ErrorKind::Aborted, "CONCURRENT_MODIFICATION")
    );
}

#[tokio::test]
async fn storage_outages_are_unavailable_and_other_failures_internal() {
    let mut mocks = Mocks::new();
    mocks.users.expect_find().returning(|_| Err(unavailable()));
    let error = mocks
        .build()
        .execute(&admin(), &target("u1"), Command::Lock)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(!error.public_message().contains("connection refused"));

    let mut mocks = Mocks::new().finding(Some(stored_user("u1", "acme")));
    mocks.users.expect_append().returning(|_, _| {
        Err(StoreError::Internal(
            "syntax error at or near \"SELEC\"".into(),
        ))
    });
    let error = mocks
        .build()
        .execute(&admin(), &target("u1"), Command::Lock)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert_eq!(error.public_message(), "internal error");
}

// --- create -------------------------------------------------------------------------

fn new_user(usernames: &[&str]) -> NewUser {
    NewUser {
        usernames: usernames
            .iter()
            .map(|u| NewUsername {
                username: Username::new(*u).unwrap(),
                organization_specific: true,
            })
            .collect(),
        contact: Contact {
            email: Some(userd_domain::user::EmailContact {
                address: Email::new("ada@example.com").unwrap(),
                verified: true,
            }),
            phone: None,
        },
        ..NewUser::default()
    }
}

#[tokio::test]
async fn create_defaults_to_the_callers_organization_and_a_server_made_id() {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_append()
        .withf(|state, event| {
            state.org_id == org("home")
                && state.id.as_str() == "1001"
                && state.usernames.len() == 1
                && state.usernames[0].id.as_str() == "1002"
                && event.sequence == 1
                && event.change.event_type() == "user.created"
                && event.actor == Some(user_id("caller"))
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let details = mocks
        .build()
        .create_user(&admin(), None, new_user(&["ada"]))
        .await
        .unwrap()
        .details;
    assert_eq!(details.id, "1001");
    assert_eq!(
        (details.created, details.changed),
        (details.created, details.created)
    );
    assert_eq!(details.owner.id, "home");
}

#[tokio::test]
async fn create_checks_the_target_organization_before_anything_else() {
    let manager_elsewhere = caller_with(&[], &[("acme", &[Role::OrgUserManager])]);
    let error = Mocks::new()
        .never_writing()
        .build()
        .create_user(
            &manager_elsewhere,
            Some(org("globex")),
            new_user(&["ada", "ada"]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.reason()),
        (ErrorKind::NotFound, "ORGANIZATION_NOT_FOUND")
    );

    let viewer = caller_with(&[], &[("acme", &[Role::OrgUserViewer])]);
    let error = Mocks::new()
        .never_writing()
        .build()
        .create_user(&viewer, Some(org("acme")), new_user(&["ada"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn a_new_users_password_comes_without_a_proof() {
    use userd_ports::login::{NewPassword, PasswordProof, SetPassword};
    let user = NewUser {
        password: Some(SetPassword {
            password: NewPassword::Hash("$2b$04$x".to_owned()),
            change_required: false,
            proof: PasswordProof::VerificationCode("ABCDEFGH".to_owned()),
        }),
        ..new_user(&["ada"])
    };
    let error = Mocks::new()
        .never_writing()
        .build()
        .create_user(&admin(), None, user)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert!(
        error
            .metadata()
            .contains(&("field", "authenticators.password".to_owned())),
        "{:?}",
        error.metadata()
    );
}

#[tokio::test]
async fn create_refuses_the_same_username_twice_in_one_request() {
    let error = Mocks::new()
        .never_writing()
        .build()
        .create_user(&admin(), None, new_user(&["Ada", "ada"]))
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.reason()),
        (ErrorKind::InvalidArgument, "DUPLICATE_USERNAME")
    );
}

#[tokio::test]
async fn create_maps_store_refusals() {
    type Case = (
        Option<&'static str>,
        fn() -> StoreError,
        ErrorKind,
        &'static str,
    );
    let cases: [Case; 3] = [
        (
            Some("ada-id"),
            || StoreError::UserIdTaken,
            ErrorKind::AlreadyExists,
            "USER_ALREADY_EXISTS",
        ),
        (
            None,
            || StoreError::UsernameTaken("ada".into()),
            ErrorKind::AlreadyExists,
            "USERNAME_TAKEN",
        ),
        (
            None,
            || StoreError::OrganizationNotFound,
            ErrorKind::NotFound,
            "ORGANIZATION_NOT_FOUND",
        ),
    ];
    for (chosen_id, store_error, kind, reason) in cases {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_append()
            .times(1)
            .returning(move |_, _| Err(store_error()));
        let mut user = new_user(&["ada"]);
        user.user_id = chosen_id.map(user_id);
        let error = mocks
            .build()
            .create_user(&admin(), None, user)
            .await
            .unwrap_err();
        assert_eq!((error.kind(), error.reason()), (kind, reason));
    }
}

#[tokio::test]
async fn a_clash_of_server_made_ids_is_retried_with_new_ids() {
    let mut mocks = Mocks::new();
    let mut seen = Vec::new();
    mocks
        .users
        .expect_append()
        .with(always(), always())
        .times(2)
        .returning(move |state, _| {
            seen.push(state.id.clone());
            if seen.len() == 1 {
                Err(StoreError::UserIdTaken)
            } else {
                Ok(())
            }
        });
    let details = mocks
        .build()
        .create_user(&admin(), None, new_user(&[]))
        .await
        .unwrap()
        .details;
    assert_eq!(details.id, "1002", "the second attempt used a fresh id");
}

#[tokio::test]
async fn readiness_follows_the_database() {
    let mut mocks = Mocks::new();
    mocks.health.expect_ping().times(1).returning(|| Ok(()));
    assert!(mocks.build().readiness().await.is_ok());
    let mut mocks = Mocks::new();
    mocks.health.expect_ping().returning(|| Err(unavailable()));
    let error = mocks.build().readiness().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
}

// --- search -------------------------------------------------------------------------

mod search {
    use super::*;
    use userd_ports::search::{
        Filter, ReadScope, SearchRequest, SortColumn, TextMatch, TextMethod, UserPage,
    };

    fn leaf() -> Filter {
        Filter::Email(TextMatch {
            value: "a".into(),
            method: TextMethod::Contains,
        })
    }

    fn nested(depth: usize) -> Filter {
        (1..depth).fold(leaf(), |inner, _| Filter::Not(Box::new(inner)))
    }

    async fn searching(
        caller: &Caller,
        request: SearchRequest,
    ) -> (
        Result<SearchResult, ServiceError>,
        Option<userd_ports::search::UserQuery>,
    ) {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let mut mocks = Mocks::new();
        let record = Arc::clone(&seen);
        mocks.users.expect_search().returning(move |query| {
            *record.lock().unwrap() = Some(query.clone());
            Ok(UserPage {
                total: 7,
                users: vec![stored_user("u1", "acme")],
            })
        });
        let result = mocks.build().search_users(caller, request).await;
        let query = seen.lock().unwrap().clone();
        (result, query)
    }

    #[tokio::test]
    async fn limits_default_cap_and_are_echoed() {
        let (result, query) = searching(&admin(), SearchRequest::default()).await;
        let result = result.unwrap();
        assert_eq!((result.applied_limit, result.total), (100, 7));
        assert_eq!(query.unwrap().limit, 100);
        let (result, _) = searching(
            &admin(),
            SearchRequest {
                limit: 1000,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(result.unwrap().applied_limit, 1000);
        let (result, query) = searching(
            &admin(),
            SearchRequest {
                limit: 1001,
                ..Default::default()
            },
        )
        .await;
        let error = result.unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::InvalidArgument, "LIMIT_EXCEEDED")
        );
        assert!(query.is_none(), "nothing was searched");
    }

    #[tokio::test]
    async fn filter_trees_are_bounded() {
        let (result, _) = searching(
            &admin(),
            SearchRequest {
                filters: vec![nested(10)],
                ..Default::default()
            },
        )
        .await;
        assert!(result.is_ok(), "depth 10 is allowed");
        let (result, query) = searching(
            &admin(),
            SearchRequest {
                filters: vec![nested(11)],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(result.unwrap_err().reason(), "FILTER_TOO_DEEP");
        assert!(query.is_none());
        let hundred = vec![leaf(); 100];
        assert!(
            searching(
                &admin(),
                SearchRequest {
                    filters: hundred,
                    ..Default::default()
                }
            )
            .await
            .0
            .is_ok()
        );
        let many = vec![Filter::And(vec![leaf(); 100])];
        let (result, _) = searching(
            &admin(),
            SearchRequest {
                filters: many,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(result.unwrap_err().reason(), "TOO_MANY_FILTERS");
        let empty = vec![Filter::Or(Vec::new())];
        let (result, _) = searching(
            &admin(),
            SearchRequest {
                filters: empty,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(result.unwrap_err().reason(), "INVALID_FILTER");
    }

    #[tokio::test]
    async fn callers_search_only_what_they_may_read() {
        let (_, query) = searching(&admin(), SearchRequest::default()).await;
        assert_eq!(query.unwrap().scope, ReadScope::Everything);

        let mixed = caller_with(
            &[],
            &[("a", &[Role::OrgUserViewer]), ("b", &[Role::OrgOwner])],
        );
        let (_, query) = searching(&mixed, SearchRequest::default()).await;
        assert_eq!(
            query.unwrap().scope,
            ReadScope::Organizations(vec![org("a"), org("b")])
        );

        let only_b = SearchRequest {
            organization: Some(org("b")),
            ..Default::default()
        };
        let (_, query) = searching(&mixed, only_b).await;
        assert_eq!(
            query.unwrap().scope,
            ReadScope::Organizations(vec![org("b")])
        );

        // An organization the caller cannot read gives nothing, without asking the store.
        let elsewhere = SearchRequest {
            organization: Some(org("z")),
            ..Default::default()
        };
        let (result, query) = searching(&mixed, elsewhere).await;
        assert_eq!(result.unwrap().total, 0);
        assert!(query.is_none());
        let (result, query) = searching(&caller_with(&[], &[]), SearchRequest::default()).await;
        assert!(result.unwrap().users.is_empty() && query.is_none());
    }

    #[tokio::test]
    async fn several_filters_must_all_hold_and_the_order_is_passed_on() {
        let request = SearchRequest {
            filters: vec![leaf(), Filter::SchemaId("s".into())],
            sort: Some(SortColumn::Email),
            descending: true,
            offset: 5,
            ..Default::default()
        };
        let (result, query) = searching(&admin(), request).await;
        let query = query.unwrap();
        assert_eq!(
            query.filter,
            Filter::And(vec![leaf(), Filter::SchemaId("s".into())])
        );
        assert_eq!(
            (query.sort, query.descending, query.offset),
            (SortColumn::Email, true, 5)
        );
        assert_eq!(result.unwrap().sort, Some(SortColumn::Email));
    }
}

// --- If-Match ----------------------------------------------------------------------

mod preconditions {
    use super::*;
    use userd_ports::service::IfMatch;

    fn at_version(condition: IfMatch) -> UserRef {
        UserRef {
            if_match: Some(condition),
            ..target("u1")
        }
    }

    #[tokio::test]
    async fn a_stale_version_writes_nothing() {
        let user = locked(stored_user("u1", "acme")); // version 2
        let error = Mocks::new()
            .finding(Some(user))
            .never_writing()
            .build()
            .execute(
                &admin(),
                &at_version(IfMatch::Versions(vec![1])),
                Command::Unlock,
            )
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::FailedPrecondition, "ETAG_MISMATCH")
        );
        assert_eq!(
            error.metadata(),
            vec![
                ("userId", "u1".to_owned()),
                ("currentEtag", "\"2\"".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn the_precondition_comes_after_authorization_and_before_the_guard() {
        let viewer = caller_with(&[], &[("acme", &[Role::OrgUserViewer])]);
        let error = Mocks::new()
            .finding(Some(stored_user("u1", "acme")))
            .never_writing()
            .build()
            .execute(
                &viewer,
                &at_version(IfMatch::Versions(vec![9])),
                Command::Lock,
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::PermissionDenied,
            "a viewer learns nothing"
        );

        // Unlocking an unlocked user would be refused by the guard; the stale version
        // is reported first.
        let error = Mocks::new()
            .finding(Some(stored_user("u1", "acme")))
            .never_writing()
            .build()
            .execute(
                &admin(),
                &at_version(IfMatch::Versions(vec![9])),
                Command::Unlock,
            )
            .await
            .unwrap_err();
        assert_eq!(error.reason(), "ETAG_MISMATCH");
    }

    #[tokio::test]
    async fn the_current_version_or_a_star_lets_the_write_through() {
        for condition in [IfMatch::Versions(vec![7, 1]), IfMatch::Any] {
            let mut mocks = Mocks::new().finding(Some(stored_user("u1", "acme")));
            mocks
                .users
                .expect_append()
                .times(1)
                .returning(|_, _| Ok(()));
            let details = mocks
                .build()
                .execute(&admin(), &at_version(condition), Command::Lock)
                .await
                .unwrap();
            assert_eq!(details.sequence, 2);
        }
        let error = Mocks::new()
            .finding(Some(stored_user("u1", "acme")))
            .never_writing()
            .build()
            .execute(
                &admin(),
                &at_version(IfMatch::Versions(Vec::new())),
                Command::Lock,
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.reason(),
            "ETAG_MISMATCH",
            "a header naming no version matches nothing"
        );
    }
}
