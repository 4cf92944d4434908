//! The authorization rules over every role and operation, and the escalation paths.

use mockall::predicate::eq;
use userd_domain::Timestamp;
use userd_domain::authz::{Memberships, Role, RoleSet};
use userd_domain::user::{Command, User};

use super::*;
use crate::users::tests::{Mocks, NOW, caller_with, org, stored_user, target, user_id};
use userd_ports::error::ErrorKind;
use userd_ports::service::{NewUser, UserService};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Passed authorization and did its work.
    Ok,
    /// 404: the resource does not exist for this caller.
    NotFound,
    /// 403.
    Denied,
}

fn outcome(result: Result<(), ServiceError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(error) => match error.kind() {
            ErrorKind::NotFound => Outcome::NotFound,
            ErrorKind::PermissionDenied => Outcome::Denied,
            other => panic!("unexpected error kind {other:?}: {error:?}"),
        },
    }
}

fn decode(row: &str) -> Vec<Outcome> {
    row.chars()
        .map(|c| match c {
            'O' => Outcome::Ok,
            'N' => Outcome::NotFound,
            'D' => Outcome::Denied,
            other => panic!("bad table cell {other}"),
        })
        .collect()
}

/// The callers of the matrix: one per role (organization roles held in "home"), and one
/// with no role at all.
fn callers() -> Vec<(&'static str, Caller)> {
    vec![
        ("IAM_OWNER", caller_with(&[Role::IamOwner], &[])),
        (
            "IAM_USER_MANAGER",
            caller_with(&[Role::IamUserManager], &[]),
        ),
        (
            "ORG_OWNER",
            caller_with(&[], &[("home", &[Role::OrgOwner])]),
        ),
        (
            "ORG_USER_MANAGER",
            caller_with(&[], &[("home", &[Role::OrgUserManager])]),
        ),
        (
            "ORG_USER_VIEWER",
            caller_with(&[], &[("home", &[Role::OrgUserViewer])]),
        ),
        ("no role", caller_with(&[], &[])),
    ]
}

const USER_OPERATIONS: [&str; 10] = [
    "get",
    "create",
    "patch",
    "lock",
    "unlock",
    "deactivate",
    "activate",
    "delete",
    "token",
    "revoke",
];

/// The stored user an operation is tried on, in a state where the state machine would
/// accept it, so only authorization can refuse.
fn user_for(operation: &str, org_id: &str) -> User {
    let user = stored_user("u1", org_id);
    let at = Timestamp::from_unix_micros(NOW - 10);
    let run = |user: &User, command| user.execute(&command, at, None).unwrap().unwrap().0;
    match operation {
        "unlock" => run(&user, Command::Lock),
        "activate" => run(&user, Command::Deactivate),
        _ => user,
    }
}

async fn try_user_operation(caller: &Caller, operation: &str, org_id: Option<&str>) -> Outcome {
    let mut mocks = Mocks::new().finding(org_id.map(|o| user_for(operation, o)));
    mocks.users.expect_append().returning(|_, _| Ok(()));
    mocks
        .members
        .expect_memberships_of()
        .returning(|_| Ok(Memberships::default()));
    mocks.tokens.expect_create_token().returning(|_| Ok(()));
    mocks.tokens.expect_revoke_token().returning(|_, _, at| {
        Ok(Some(RecordTimes {
            created: at,
            changed: at,
        }))
    });
    if org_id.is_none() {
        // A missing organization, as the store reports it.
        mocks.users = userd_ports::repository::MockUserRepository::new();
        mocks.users.expect_find().returning(|_| Ok(None));
        mocks
            .users
            .expect_append()
            .returning(|_, _| Err(StoreError::OrganizationNotFound));
    }
    let service = mocks.build();
    let target = target("u1");
    let result = match operation {
        "get" => service.get_user(caller, &target).await.map(drop),
        "create" => service
            .create_user(
                caller,
                Some(org(org_id.unwrap_or("gone"))),
                NewUser::default(),
            )
            .await
            .map(drop),
        "patch" => service
            .execute(caller, &target, Command::Patch(Default::default()))
            .await
            .map(drop),
        "lock" => service
            .execute(caller, &target, Command::Lock)
            .await
            .map(drop),
        "unlock" => service
            .execute(caller, &target, Command::Unlock)
            .await
            .map(drop),
        "deactivate" => service
            .execute(caller, &target, Command::Deactivate)
            .await
            .map(drop),
        "activate" => service
            .execute(caller, &target, Command::Activate)
            .await
            .map(drop),
        "delete" => service
            .execute(caller, &target, Command::Delete)
            .await
            .map(drop),
        "token" => service.create_token(caller, &target, None).await.map(drop),
        "revoke" => service.revoke_token(caller, &target, "t1").await.map(drop),
        other => panic!("unknown operation {other}"),
    };
    outcome(result)
}

/// Every role × every user operation × (own organization, other organization, no such
/// user), against the table in docs/api.md.
#[tokio::test]
async fn every_role_on_every_user_operation() {
    // Columns: get create patch lock unlock deactivate activate delete token revoke.
    let table = [
        ("IAM_OWNER", "OOOOOOOOOO", "OOOOOOOOOO"),
        ("IAM_USER_MANAGER", "OOOOOOOODD", "OOOOOOOODD"),
        ("ORG_OWNER", "OOOOOOOOOO", "NNNNNNNNNN"),
        ("ORG_USER_MANAGER", "OOOOOOOODD", "NNNNNNNNNN"),
        ("ORG_USER_VIEWER", "ODDDDDDDDD", "NNNNNNNNNN"),
        ("no role", "NNNNNNNNNN", "NNNNNNNNNN"),
    ];
    for ((name, caller), (row_name, own, other)) in callers().into_iter().zip(table) {
        assert_eq!(name, row_name);
        for (i, operation) in USER_OPERATIONS.iter().enumerate() {
            let cases = [
                ("own organization", Some("home"), decode(own)[i]),
                ("other organization", Some("elsewhere"), decode(other)[i]),
                ("no such user", None, Outcome::NotFound),
            ];
            for (place, org_id, expected) in cases {
                let got = try_user_operation(&caller, operation, org_id).await;
                assert_eq!(got, expected, "{name} {operation} in {place}");
            }
        }
    }
}

fn organizations_finding(mocks: &mut Mocks, existing: &'static [&'static str]) {
    mocks
        .organizations
        .expect_find_organization()
        .returning(move |id| {
            Ok(existing.contains(&id.as_str()).then(|| Organization {
                id: id.clone(),
                name: "Org".into(),
                created: Timestamp::from_unix_micros(1),
                changed: Timestamp::from_unix_micros(2),
            }))
        });
}

async fn try_admin_operation(caller: &Caller, operation: &str, org_id: &'static str) -> Outcome {
    let mut mocks = Mocks::new();
    organizations_finding(&mut mocks, &["home", "elsewhere"]);
    mocks
        .organizations
        .expect_create_organization()
        .returning(|_| Ok(()));
    let times = |at| {
        Ok(RecordTimes {
            created: at,
            changed: at,
        })
    };
    mocks
        .members
        .expect_set_org_member()
        .returning(move |_, _, _, at| times(at));
    mocks
        .members
        .expect_remove_org_member()
        .returning(move |_, _, at| times(at).map(Some));
    mocks
        .members
        .expect_set_instance_member()
        .returning(move |_, _, at| times(at));
    mocks
        .members
        .expect_remove_instance_member()
        .returning(move |_, at| times(at).map(Some));
    // The member to be is a user of the organization the grant is in.
    mocks
        .users
        .expect_find()
        .returning(move |id| Ok(Some(stored_user(id.as_str(), org_id))));
    let service = mocks.build();
    let member = user_id("member");
    let result = match operation {
        "create org" => service.create_organization(caller, "New").await.map(drop),
        "get org" => service
            .get_organization(caller, &org(org_id))
            .await
            .map(drop),
        "add member" => service
            .set_org_member(caller, &org(org_id), &member, &[Role::OrgUserViewer])
            .await
            .map(drop),
        "remove member" => service
            .remove_org_member(caller, &org(org_id), &member)
            .await
            .map(drop),
        "instance member" => service
            .set_instance_member(caller, &member, &[Role::IamUserManager])
            .await
            .map(drop),
        "remove instance member" => service
            .remove_instance_member(caller, &member)
            .await
            .map(drop),
        other => panic!("unknown operation {other}"),
    };
    outcome(result)
}

#[tokio::test]
async fn every_role_on_every_administration_operation() {
    const OPERATIONS: [&str; 6] = [
        "create org",
        "get org",
        "add member",
        "remove member",
        "instance member",
        "remove instance member",
    ];
    // Columns as OPERATIONS; organization operations on "home" (own) and "elsewhere".
    let table = [
        ("IAM_OWNER", "OOOOOO", "OOOOOO"),
        ("IAM_USER_MANAGER", "DODDDD", "DODDDD"),
        ("ORG_OWNER", "DOOODD", "DNNNDD"),
        ("ORG_USER_MANAGER", "DODDDD", "DNNNDD"),
        ("ORG_USER_VIEWER", "DODDDD", "DNNNDD"),
        ("no role", "DNNNDD", "DNNNDD"),
    ];
    for ((name, caller), (_, own, other)) in callers().into_iter().zip(table) {
        for (i, operation) in OPERATIONS.iter().enumerate() {
            for (org_id, row) in [("home", own), ("elsewhere", other)] {
                let got = try_admin_operation(&caller, operation, org_id).await;
                assert_eq!(got, decode(row)[i], "{name} {operation} in {org_id}");
            }
            // An organization that does not exist is "not found", whoever asks.
            if !["create org", "instance member", "remove instance member"].contains(operation) {
                let got = try_admin_operation(&caller, operation, "nowhere").await;
                assert_eq!(
                    got,
                    Outcome::NotFound,
                    "{name} {operation} in a missing organization"
                );
            }
        }
    }
}

// --- escalation -------------------------------------------------------------------

fn token_mocks(target_org: &'static str, held: Memberships) -> Mocks {
    let mut mocks = Mocks::new().finding(Some(stored_user("u1", target_org)));
    mocks
        .members
        .expect_memberships_of()
        .returning(move |_| Ok(held.clone()));
    mocks
}

fn roles_in(org_id: &str, roles: &[Role]) -> Memberships {
    Memberships {
        instance: RoleSet::default(),
        organizations: [(org(org_id), RoleSet::new(roles.iter().copied()))].into(),
    }
}

#[tokio::test]
async fn an_org_owner_cannot_mint_a_token_for_someone_stronger() {
    let owner = caller_with(&[], &[("home", &[Role::OrgOwner])]);
    let stronger = [
        Memberships {
            instance: RoleSet::new([Role::IamOwner]),
            ..Memberships::default()
        },
        Memberships {
            instance: RoleSet::new([Role::IamUserManager]),
            ..Memberships::default()
        },
        roles_in("elsewhere", &[Role::OrgUserViewer]),
    ];
    for held in stronger {
        let mut mocks = token_mocks("home", held.clone());
        mocks.tokens.expect_create_token().never();
        let error = mocks
            .build()
            .create_token(&owner, &target("u1"), None)
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::PermissionDenied, "PRIVILEGE_ESCALATION"),
            "{held:?}"
        );
    }
    // An equal is fine.
    let mut mocks = token_mocks("home", roles_in("home", &[Role::OrgOwner]));
    mocks
        .tokens
        .expect_create_token()
        .times(1)
        .returning(|_| Ok(()));
    let issued = mocks
        .build()
        .create_token(&owner, &target("u1"), None)
        .await
        .unwrap();
    assert!(
        issued
            .token
            .expose()
            .starts_with(crate::tokens::TOKEN_PREFIX)
    );
    assert_eq!(issued.details.owner.id, "home");
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    // ORG_OWNER of home: IAM roles are out of reach, whatever the route.
    let owner = caller_with(&[], &[("home", &[Role::OrgOwner])]);
    let mut mocks = Mocks::new();
    organizations_finding(&mut mocks, &["home"]);
    mocks.members.expect_set_instance_member().never();
    mocks.members.expect_set_org_member().never();
    let service = mocks.build();
    let error = service
        .set_instance_member(&owner, &user_id("m"), &[Role::IamOwner])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    let error = service
        .set_org_member(&owner, &org("home"), &user_id("m"), &[Role::IamOwner])
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.reason()),
        (ErrorKind::InvalidArgument, "INVALID_ROLE")
    );

    // Only IAM_OWNER creates organizations.
    let manager = caller_with(&[Role::IamUserManager], &[]);
    let error = service
        .create_organization(&manager, "Evil Corp")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn grants_are_checked_for_scope_and_emptiness() {
    let admin = caller_with(&[Role::IamOwner], &[]);
    let mut mocks = Mocks::new();
    organizations_finding(&mut mocks, &["home"]);
    mocks.members.expect_set_org_member().never();
    mocks.members.expect_set_instance_member().never();
    let service = mocks.build();
    for roles in [vec![], vec![Role::IamOwner]] {
        let error = service
            .set_org_member(&admin, &org("home"), &user_id("m"), &roles)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), "INVALID_ROLE", "{roles:?}");
    }
    let error = service
        .set_instance_member(&admin, &user_id("m"), &[Role::OrgOwner])
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "INVALID_ROLE");
}

#[tokio::test]
async fn membership_changes_reach_the_store_and_forget_cached_tokens() {
    let admin = caller_with(&[Role::IamOwner], &[]);
    let mut mocks = Mocks::new().finding(Some(stored_user("m", "home")));
    organizations_finding(&mut mocks, &["home"]);
    mocks.authenticator = userd_ports::repository::MockAuthenticator::new();
    mocks
        .authenticator
        .expect_forget_user()
        .with(eq(user_id("m")))
        .times(1) // only the grant that succeeded
        .return_const(());
    mocks
        .members
        .expect_set_org_member()
        .withf(|o, u, roles, _| {
            o.as_str() == "home"
                && u.as_str() == "m"
                && roles.roles() == [Role::OrgOwner, Role::OrgUserViewer]
        })
        .times(1)
        .returning(|_, _, _, at| {
            Ok(RecordTimes {
                created: at,
                changed: at,
            })
        });
    mocks
        .members
        .expect_remove_org_member()
        .times(1)
        .returning(|_, _, _| Ok(None));
    mocks
        .members
        .expect_set_instance_member()
        .times(1)
        .returning(|_, _, _| Err(StoreError::UserNotFound));
    let service = mocks.build();
    let details = service
        .set_org_member(
            &admin,
            &org("home"),
            &user_id("m"),
            &[Role::OrgUserViewer, Role::OrgOwner],
        )
        .await
        .unwrap();
    assert_eq!(
        (details.id.as_str(), details.owner.kind),
        ("m", OwnerType::Organization)
    );
    let error = service
        .remove_org_member(&admin, &org("home"), &user_id("m"))
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "MEMBER_NOT_FOUND");
    let error = service
        .set_instance_member(&admin, &user_id("m"), &[Role::IamUserManager])
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "USER_NOT_FOUND");
}

#[tokio::test]
async fn tokens_expire_in_the_future_and_unknown_tokens_are_not_found() {
    let admin = caller_with(&[Role::IamOwner], &[]);
    let mut mocks = token_mocks("home", Memberships::default());
    mocks.tokens.expect_create_token().never();
    mocks
        .tokens
        .expect_revoke_token()
        .returning(|_, _, _| Ok(None));
    let service = mocks.build();
    for past in [NOW, NOW - 1] {
        let error = service
            .create_token(
                &admin,
                &target("u1"),
                Some(Timestamp::from_unix_micros(past)),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::InvalidArgument, "EXPIRATION_IN_PAST")
        );
    }
    let error = service
        .revoke_token(&admin, &target("u1"), "nope")
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.reason()),
        (ErrorKind::NotFound, "TOKEN_NOT_FOUND")
    );
}

#[tokio::test]
async fn organizations_are_owned_by_the_instance() {
    let admin = caller_with(&[Role::IamOwner], &[]);
    let mut mocks = Mocks::new();
    mocks
        .organizations
        .expect_create_organization()
        .withf(|o| o.name == "Globex" && o.id.as_str() == "1001")
        .times(1)
        .returning(|_| Ok(()));
    let service = mocks.build();
    let details = service.create_organization(&admin, "Globex").await.unwrap();
    assert_eq!(
        details.owner,
        Owner {
            kind: OwnerType::Instance,
            id: "instance".into()
        }
    );
    let error = service.create_organization(&admin, " ").await.unwrap_err();
    assert_eq!(error.reason(), "INVALID_ORGANIZATION_NAME");
}

#[tokio::test]
async fn members_are_users_the_caller_can_see() {
    let owner = caller_with(&[], &[("home", &[Role::OrgOwner])]);
    for found in [Some(stored_user("m", "elsewhere")), None] {
        let mut mocks = Mocks::new().finding(found.clone());
        organizations_finding(&mut mocks, &["home", "elsewhere"]);
        mocks.members.expect_set_org_member().never();
        let error = mocks
            .build()
            .set_org_member(&owner, &org("home"), &user_id("m"), &[Role::OrgUserViewer])
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.reason()),
            (ErrorKind::NotFound, "USER_NOT_FOUND"),
            "a user of another organization reads exactly like one that does not exist: {found:?}"
        );
    }
}

/// Whom each role may write to, delete and mint tokens for, among the holders of every
/// role (organization roles in the caller's own organization "home").
#[tokio::test]
async fn every_role_acting_on_every_other_role_in_its_organization() {
    let targets: [(&str, Memberships); 6] = [
        (
            "IAM_OWNER",
            Memberships {
                instance: RoleSet::new([Role::IamOwner]),
                ..Memberships::default()
            },
        ),
        (
            "IAM_USER_MANAGER",
            Memberships {
                instance: RoleSet::new([Role::IamUserManager]),
                ..Memberships::default()
            },
        ),
        ("ORG_OWNER", roles_in("home", &[Role::OrgOwner])),
        (
            "ORG_USER_MANAGER",
            roles_in("home", &[Role::OrgUserManager]),
        ),
        ("ORG_USER_VIEWER", roles_in("home", &[Role::OrgUserViewer])),
        ("no role", Memberships::default()),
    ];
    // Cells per target above: O done, E refused as PRIVILEGE_ESCALATION, D lacks the
    // permission. Writes and deletes alike; then tokens.
    let table = [
        ("IAM_OWNER", "OOOOOO", "OOOOOO"),
        ("IAM_USER_MANAGER", "EOEOOO", "DDDDDD"),
        ("ORG_OWNER", "EEOOOO", "EEOOOO"),
        ("ORG_USER_MANAGER", "EEEOOO", "DDDDDD"),
        ("ORG_USER_VIEWER", "DDDDDD", "DDDDDD"),
    ];
    for ((name, caller), (row, writes, tokens)) in callers().into_iter().zip(table) {
        assert_eq!(name, row);
        for (j, (target_name, held)) in targets.iter().enumerate() {
            for (operation, cells) in [("lock", writes), ("delete", writes), ("token", tokens)] {
                let mut mocks = token_mocks("home", held.clone());
                mocks.users.expect_append().returning(|_, _| Ok(()));
                mocks.tokens.expect_create_token().returning(|_| Ok(()));
                let service = mocks.build();
                let result = match operation {
                    "lock" => service
                        .execute(&caller, &target("u1"), Command::Lock)
                        .await
                        .map(drop),
                    "delete" => service
                        .execute(&caller, &target("u1"), Command::Delete)
                        .await
                        .map(drop),
                    _ => service
                        .create_token(&caller, &target("u1"), None)
                        .await
                        .map(drop),
                };
                let got = match &result {
                    Ok(()) => 'O',
                    Err(e) if e.reason() == "PRIVILEGE_ESCALATION" => 'E',
                    Err(e) if e.kind() == ErrorKind::PermissionDenied => 'D',
                    Err(e) => panic!("{name} {operation} on {target_name}: {e:?}"),
                };
                let expected = cells.chars().nth(j).unwrap();
                assert_eq!(got, expected, "{name} {operation} on {target_name}");
            }
        }
    }
}

#[tokio::test]
async fn acting_on_oneself_needs_no_covering() {
    // The caller ("caller") holds more than its own organization role could cover.
    let manager = caller_with(&[], &[("home", &[Role::OrgUserManager])]);
    let mut mocks = Mocks::new().finding(Some(stored_user("caller", "home")));
    mocks.members.expect_memberships_of().never();
    mocks
        .users
        .expect_append()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .build()
        .execute(&manager, &target("caller"), Command::Lock)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_carries_at_most_what_its_issuer_holds() {
    let owner = caller_with(&[], &[("home", &[Role::OrgOwner])]);
    let mut mocks = token_mocks("home", Memberships::default());
    let expected = roles_in("home", &[Role::OrgOwner]).grants();
    mocks
        .tokens
        .expect_create_token()
        .withf(move |token| {
            token.ceiling.as_ref() == Some(&expected)
                && token.issuer.as_ref().map(|u| u.as_str()) == Some("caller")
        })
        .times(1)
        .returning(|_| Ok(()));
    mocks
        .build()
        .create_token(&owner, &target("u1"), None)
        .await
        .unwrap();

    // For oneself: the issuing token's own ceiling, nothing wider.
    let mut capped = caller_with(&[Role::IamOwner], &[]);
    capped.ceiling = Some(roles_in("home", &[Role::OrgOwner]).grants());
    let ceiling = capped.ceiling.clone();
    let mut mocks = Mocks::new().finding(Some(stored_user("caller", "home")));
    mocks
        .tokens
        .expect_create_token()
        .withf(move |token| token.ceiling == ceiling)
        .times(1)
        .returning(|_| Ok(()));
    mocks
        .build()
        .create_token(&capped, &target("caller"), None)
        .await
        .unwrap();
}
