//! Passwords, sessions and login settings over gRPC, gRPC-web and Connect, against the
//! real binary, through a real RPC client library, on both backends: the RPC side of
//! docs/api.md's "Passwords, sessions and lockout".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use buffa::MessageField;
use buffa_types::google::protobuf::Duration as ProtoDuration;
use connectrpc::client::HttpClient;
use connectrpc::{ConnectError, ErrorCode, Protocol};
use serde_json::json;
use support::rpc::{DOORS, connection, reason, runtime};
use support::{USERS, World};
use userd_api_rpc::proto::zitadel::object::v2::__buffa::oneof::request_context::ResourceOwner;
use userd_api_rpc::proto::zitadel::object::v2::RequestContext as SettingsContext;
use userd_api_rpc::proto::zitadel::object::v3alpha::__buffa::oneof::organization::Property;
use userd_api_rpc::proto::zitadel::object::v3alpha::Organization;
use userd_api_rpc::proto::zitadel::resources::user::v3alpha as v3;
use userd_api_rpc::proto::zitadel::session::v2 as sessions;
use userd_api_rpc::proto::zitadel::settings::v2 as settings;
use userd_api_rpc::proto::zitadel::user::v2;
use userd_testkit::{TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    password_session_and_settings_rpcs_through_each_protocol,
    v2_users_start_with_a_password_or_an_imported_hash,
    lockout_over_grpc_unlock_over_connect_read_over_rest,
    the_authorization_order_holds_for_login_rpcs,
    contact_rpcs_through_each_protocol,
);

const RIGHT: &str = "Correct-Horse-7";
const SECOND: &str = "Second-Horse-8";
const THIRD: &str = "Third-Horse-9";
const FOURTH: &str = "Fourth-Horse-10";

/// Made by Python's `bcrypt` (cost 4) for "correct horse".
const BCRYPT: &str = "$2b$04$q3cyJrRgYCpG4e/XMYlR6u1QAqEVCBmsSndtvsfpj6B/wpVonX2f6";

/// The clients of every service, for one door and one token.
struct Clients {
    v3: v3::ZitadelUsersClient<HttpClient>,
    v2: v2::UserServiceClient<HttpClient>,
    sessions: sessions::SessionServiceClient<HttpClient>,
    settings: settings::SettingsServiceClient<HttpClient>,
}

fn clients(base: &str, token: Option<&str>, protocol: Protocol, json: bool) -> Clients {
    let (transport, config) = connection(base, token, protocol, json);
    Clients {
        v3: v3::ZitadelUsersClient::new(transport.clone(), config.clone()),
        v2: v2::UserServiceClient::new(transport.clone(), config.clone()),
        sessions: sessions::SessionServiceClient::new(transport.clone(), config.clone()),
        settings: settings::SettingsServiceClient::new(transport, config),
    }
}

/// A token for a login front end: a user holding IAM_LOGIN_CLIENT.
fn login_client(w: &World) -> String {
    w.user("frontend", &w.home);
    w.grant_instance("frontend", &["IAM_LOGIN_CLIENT"]);
    w.token("frontend")
}

fn by_name(name: &str) -> sessions::CheckUser {
    sessions::CheckUser {
        search: Some(sessions::__buffa::oneof::check_user::Search::LoginName(
            name.to_owned(),
        )),
        ..Default::default()
    }
}

fn by_id(id: &str) -> sessions::CheckUser {
    sessions::CheckUser {
        search: Some(sessions::__buffa::oneof::check_user::Search::UserId(
            id.to_owned(),
        )),
        ..Default::default()
    }
}

fn login_request(user: sessions::CheckUser, password: &str) -> sessions::CreateSessionRequest {
    sessions::CreateSessionRequest {
        checks: MessageField::some(sessions::Checks {
            user: MessageField::some(user),
            password: MessageField::some(sessions::CheckPassword {
                password: password.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn get_session(id: &str) -> sessions::GetSessionRequest {
    sessions::GetSessionRequest {
        session_id: id.to_owned(),
        ..Default::default()
    }
}

fn plain(password: &str) -> Option<v3::__buffa::oneof::set_password::Type> {
    Some(v3::__buffa::oneof::set_password::Type::Password(
        password.to_owned(),
    ))
}

/// (code, reason) of a failed call.
fn failure<T: std::fmt::Debug>(result: Result<T, ConnectError>) -> (ErrorCode, String) {
    let error = result.expect_err("the call should fail");
    (error.code, reason(&error))
}

fn invalid_credentials() -> (ErrorCode, String) {
    (ErrorCode::InvalidArgument, "INVALID_CREDENTIALS".to_owned())
}

fn home(w: &World) -> MessageField<Organization, buffa::Inline<Organization>> {
    MessageField::some(Organization {
        property: Some(Property::OrgId(w.home.clone())),
        ..Default::default()
    })
}

fn password_session_and_settings_rpcs_through_each_protocol(db: TestDatabase) {
    let w = World::new(db);
    let base = w.userd.rpc_base();
    let admin = w.userd.token.clone();
    let frontend = login_client(&w);
    runtime().block_on(async {
        for (door, protocol, json) in DOORS {
            let admin = clients(&base, Some(&admin), protocol, json);
            let front = clients(&base, Some(&frontend), protocol, json);
            let id = format!("{door}-pw");

            // v3alpha CreateUser with a password; GetUser shows that one is set.
            admin
                .v3
                .create_user(v3::CreateUserRequest {
                    organization: home(&w),
                    user: MessageField::some(v3::CreateUser {
                        user_id: Some(id.clone()),
                        authenticators: MessageField::some(v3::SetAuthenticators {
                            usernames: vec![v3::SetUsername {
                                username: id.clone(),
                                ..Default::default()
                            }],
                            password: MessageField::some(v3::SetPassword {
                                r#type: plain(RIGHT),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap();
            let got = admin
                .v3
                .get_user(v3::GetUserRequest {
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            assert!(
                got.user.authenticators.password.last_changed.is_set(),
                "{door}: {got:?}"
            );
            assert!(!format!("{got:?}").contains("argon2"), "{door}: no hash");

            // CreateSession checks user and password; GetSession shows both factors.
            let created = front
                .sessions
                .create_session(sessions::CreateSessionRequest {
                    lifetime: MessageField::some(ProtoDuration::from_secs(3600)),
                    ..login_request(by_name(&id), RIGHT)
                })
                .await
                .unwrap()
                .into_owned();
            assert!(created.session_token.len() >= 43, "{door}: 256 bits");
            assert_eq!(created.details.resource_owner, w.home, "{door}");
            let session = front
                .sessions
                .get_session(get_session(&created.session_id))
                .await
                .unwrap()
                .into_owned()
                .session;
            assert_eq!(session.id, created.session_id);
            assert_eq!(session.factors.user.id, id, "{door}");
            assert_eq!(session.factors.user.login_name, id);
            assert_eq!(session.factors.user.organization_id, w.home);
            assert!(session.factors.password.verified_at.is_set(), "{door}");
            assert!(session.expiration_date.is_set(), "{door}");

            // SetSession checks again and hands out a new token.
            let renewed = front
                .sessions
                .set_session(sessions::SetSessionRequest {
                    session_id: created.session_id.clone(),
                    checks: MessageField::some(sessions::Checks {
                        password: MessageField::some(sessions::CheckPassword {
                            password: RIGHT.to_owned(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            assert_ne!(renewed.session_token, created.session_token, "{door}");

            // Wrong password and unknown user answer alike.
            let wrong = front
                .sessions
                .create_session(login_request(by_id(&id), "wrong"))
                .await
                .unwrap_err();
            let unknown = front
                .sessions
                .create_session(login_request(by_name("nobody-at-all"), "wrong"))
                .await
                .unwrap_err();
            assert_eq!(
                (wrong.code, reason(&wrong)),
                invalid_credentials(),
                "{door}"
            );
            assert_eq!((unknown.code, reason(&unknown)), invalid_credentials());
            assert_eq!(wrong.message, unknown.message, "{door}: indistinguishable");

            // v3alpha reset code, then SetPassword proven by it; the session ends.
            let reset = admin
                .v3
                .request_password_reset(v3::RequestPasswordResetRequest {
                    id: id.clone(),
                    medium: Some(
                        v3::__buffa::oneof::request_password_reset_request::Medium::ReturnCode(
                            Box::default(),
                        ),
                    ),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            let code = reset
                .verification_code
                .expect("returnCode returns the code");
            admin
                .v3
                .set_password(v3::SetPasswordRequest {
                    id: id.clone(),
                    new_password: MessageField::some(v3::SetPassword {
                        r#type: plain(SECOND),
                        verification: Some(
                            v3::__buffa::oneof::set_password::Verification::VerificationCode(
                                code.clone(),
                            ),
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(
                failure(
                    front
                        .sessions
                        .get_session(get_session(&created.session_id))
                        .await
                ),
                (ErrorCode::NotFound, "SESSION_NOT_FOUND".to_owned()),
                "{door}: a password change ends the user's sessions"
            );
            let used_again = admin
                .v3
                .set_password(v3::SetPasswordRequest {
                    id: id.clone(),
                    new_password: MessageField::some(v3::SetPassword {
                        r#type: plain(THIRD),
                        verification: Some(
                            v3::__buffa::oneof::set_password::Verification::VerificationCode(code),
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await;
            assert_eq!(failure(used_again).0, ErrorCode::InvalidArgument, "{door}");
            assert_eq!(
                failure(
                    front
                        .sessions
                        .create_session(login_request(by_name(&id), RIGHT))
                        .await
                ),
                invalid_credentials(),
                "{door}: the old password is gone"
            );

            // v2 SetPassword with the current password; v2 PasswordReset and its code.
            admin
                .v2
                .set_password(v2::SetPasswordRequest {
                    user_id: id.clone(),
                    new_password: MessageField::some(v2::Password {
                        password: THIRD.to_owned(),
                        ..Default::default()
                    }),
                    verification: Some(
                        v2::__buffa::oneof::set_password_request::Verification::CurrentPassword(
                            SECOND.to_owned(),
                        ),
                    ),
                    ..Default::default()
                })
                .await
                .unwrap();
            let reset = admin
                .v2
                .password_reset(v2::PasswordResetRequest {
                    user_id: id.clone(),
                    medium: Some(
                        v2::__buffa::oneof::password_reset_request::Medium::ReturnCode(
                            Box::default(),
                        ),
                    ),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            admin
                .v2
                .set_password(v2::SetPasswordRequest {
                    user_id: id.clone(),
                    new_password: MessageField::some(v2::Password {
                        password: FOURTH.to_owned(),
                        ..Default::default()
                    }),
                    verification: Some(
                        v2::__buffa::oneof::set_password_request::Verification::VerificationCode(
                            reset.verification_code.unwrap(),
                        ),
                    ),
                    ..Default::default()
                })
                .await
                .unwrap();
            let by_link = admin
                .v2
                .password_reset(v2::PasswordResetRequest {
                    user_id: id.clone(),
                    ..Default::default()
                })
                .await;
            assert_eq!(
                failure(by_link),
                (
                    ErrorCode::FailedPrecondition,
                    "NOTIFICATIONS_NOT_CONFIGURED".to_owned()
                ),
                "{door}"
            );

            // DeleteSession ends a session for good.
            let session = front
                .sessions
                .create_session(login_request(by_name(&id), FOURTH))
                .await
                .unwrap()
                .into_owned();
            front
                .sessions
                .delete_session(sessions::DeleteSessionRequest {
                    session_id: session.session_id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(
                failure(
                    front
                        .sessions
                        .get_session(get_session(&session.session_id))
                        .await
                ),
                (ErrorCode::NotFound, "SESSION_NOT_FOUND".to_owned()),
                "{door}"
            );

            // RemovePassword: no password, no login.
            admin
                .v3
                .remove_password(v3::RemovePasswordRequest {
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(
                failure(
                    front
                        .sessions
                        .create_session(login_request(by_name(&id), FOURTH))
                        .await
                ),
                invalid_credentials(),
                "{door}"
            );

            // Settings, with the instance's defaults.
            let lockout = admin
                .settings
                .get_lockout_settings(settings::GetLockoutSettingsRequest {
                    ctx: MessageField::some(SettingsContext {
                        resource_owner: Some(ResourceOwner::Instance(true)),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned()
                .settings;
            assert_eq!(lockout.max_password_attempts, 10, "{door}");
            assert_eq!(
                lockout.resource_owner_type.as_known(),
                Some(settings::ResourceOwnerType::RESOURCE_OWNER_TYPE_INSTANCE)
            );
            assert!(!lockout.lockout_duration.is_set());
            let complexity = front
                .settings
                .get_password_complexity_settings(
                    settings::GetPasswordComplexitySettingsRequest::default(),
                )
                .await
                .unwrap()
                .into_owned()
                .settings;
            assert_eq!(complexity.min_length, 8, "{door}");
        }
    });
    let (status, user) = w.userd.user("grpc-pw");
    assert_eq!(status, 200);
    assert!(
        user["user"]["authenticators"].get("password").is_none(),
        "removed over RPC, read over REST: {user}"
    );
}

fn v2_users_start_with_a_password_or_an_imported_hash(db: TestDatabase) {
    let w = World::new(db);
    let base = w.userd.rpc_base();
    let admin = w.userd.token.clone();
    let frontend = login_client(&w);
    runtime().block_on(async {
        for (door, protocol, json) in DOORS {
            let admin = clients(&base, Some(&admin), protocol, json);
            let front = clients(&base, Some(&frontend), protocol, json);
            let email = |name: &str| {
                MessageField::some(v2::SetHumanEmail {
                    email: format!("{name}@example.com"),
                    ..Default::default()
                })
            };
            let added = format!("{door}-added");
            admin
                .v2
                .add_human_user(v2::AddHumanUserRequest {
                    username: Some(added.clone()),
                    email: email(&added),
                    password_type: Some(
                        v2::__buffa::oneof::add_human_user_request::PasswordType::Password(
                            Box::new(v2::Password {
                                password: RIGHT.to_owned(),
                                change_required: true,
                                ..Default::default()
                            }),
                        ),
                    ),
                    ..Default::default()
                })
                .await
                .unwrap();
            front
                .sessions
                .create_session(login_request(by_name(&added), RIGHT))
                .await
                .unwrap();

            let imported = format!("{door}-imported");
            let created = admin
                .v2
                .create_user(v2::CreateUserRequest {
                    username: Some(imported.clone()),
                    user_type: Some(v2::__buffa::oneof::create_user_request::UserType::Human(
                        Box::new(v2::create_user_request::Human {
                            email: email(&imported),
                            password_type: Some(
                                v2::__buffa::oneof::create_user_request::human::PasswordType::HashedPassword(
                                    Box::new(v2::HashedPassword {
                                        hash: BCRYPT.to_owned(),
                                        ..Default::default()
                                    }),
                                ),
                            ),
                            ..Default::default()
                        }),
                    )),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            front
                .sessions
                .create_session(login_request(by_id(&created.id), "correct horse"))
                .await
                .unwrap();

            let user = admin
                .v2
                .get_user_by_id(v2::GetUserByIDRequest {
                    user_id: created.id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned()
                .user;
            let Some(v2::__buffa::oneof::user::Type::Human(human)) = &user.r#type else {
                panic!("a human: {user:?}");
            };
            assert!(human.password_changed.is_set(), "{door}");
            assert!(!human.password_change_required, "{door}");

            let weak = admin
                .v2
                .add_human_user(v2::AddHumanUserRequest {
                    username: Some(format!("{door}-weak")),
                    email: email(&format!("{door}-weak")),
                    password_type: Some(
                        v2::__buffa::oneof::add_human_user_request::PasswordType::Password(
                            Box::new(v2::Password {
                                password: "short".to_owned(),
                                ..Default::default()
                            }),
                        ),
                    ),
                    ..Default::default()
                })
                .await;
            assert_eq!(
                failure(weak),
                (ErrorCode::InvalidArgument, "PASSWORD_TOO_WEAK".to_owned()),
                "{door}"
            );
        }
    });
    let (status, found) = w.userd.get(&format!("{USERS}/grpc-web-added"));
    assert_eq!(status, 404, "v2 chose the id, not the username: {found}");
}

fn lockout_over_grpc_unlock_over_connect_read_over_rest(db: TestDatabase) {
    let w = World::new(db);
    let (status, body) = w.userd.post(
        &format!("{USERS}?organization.orgId={}", w.home),
        &json!({"userId": "ada", "authenticators": {"usernames": [{"username": "ada"}],
                                                     "password": {"password": RIGHT}}}),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = w.userd.call(
        "PUT",
        "/v2/settings/lockout",
        Some(&json!({"ctx": {"orgId": w.home}, "maxPasswordAttempts": "3"}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let base = w.userd.rpc_base();
    let admin = w.userd.token.clone();
    let frontend = login_client(&w);
    runtime().block_on(async {
        let grpc = clients(&base, Some(&frontend), Protocol::Grpc, false);
        let lockout = grpc
            .settings
            .get_lockout_settings(settings::GetLockoutSettingsRequest {
                ctx: MessageField::some(SettingsContext {
                    resource_owner: Some(ResourceOwner::OrgId(w.home.clone())),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_owned()
            .settings;
        assert_eq!(lockout.max_password_attempts, 3);
        assert_eq!(
            lockout.resource_owner_type.as_known(),
            Some(settings::ResourceOwnerType::RESOURCE_OWNER_TYPE_ORG)
        );

        for attempt in 0..3 {
            let answer = grpc
                .sessions
                .create_session(login_request(by_name("ada"), "wrong"))
                .await;
            assert_eq!(failure(answer), invalid_credentials(), "attempt {attempt}");
        }
        let locked = (ErrorCode::FailedPrecondition, "USER_LOCKED".to_owned());
        let right = grpc
            .sessions
            .create_session(login_request(by_name("ada"), RIGHT))
            .await;
        assert_eq!(failure(right), locked, "the right password after the lock");
        assert_eq!(w.userd.user("ada").1["user"]["state"], "USER_STATE_LOCKED");

        let connect = clients(&base, Some(&admin), Protocol::Connect, true);
        connect
            .v2
            .unlock_user(v2::UnlockUserRequest {
                user_id: "ada".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(w.userd.user("ada").1["user"]["state"], "USER_STATE_ACTIVE");
        let web = clients(&base, Some(&frontend), Protocol::GrpcWeb, false);
        web.sessions
            .create_session(login_request(by_name("ada"), RIGHT))
            .await
            .expect("unlocked, the user logs in again");
    });
}

fn the_authorization_order_holds_for_login_rpcs(db: TestDatabase) {
    let w = World::new(db);
    let (status, body) = w.userd.post(
        &format!("{USERS}?organization.orgId={}", w.home),
        &json!({"userId": "target", "authenticators": {"usernames": [{"username": "target"}],
                                                        "password": {"password": RIGHT}}}),
    );
    assert_eq!(status, 201, "{body}");
    w.user("viewer", &w.home);
    w.grant(&w.home, "viewer", &["ORG_USER_VIEWER"]);
    w.user("stranger", &w.away);
    w.grant(&w.away, "stranger", &["ORG_OWNER"]);
    let viewer = w.token("viewer");
    let stranger = w.token("stranger");
    let base = w.userd.rpc_base();
    let set_password = |id: &str| v3::SetPasswordRequest {
        id: id.to_owned(),
        new_password: MessageField::some(v3::SetPassword {
            r#type: plain(SECOND),
            ..Default::default()
        }),
        ..Default::default()
    };
    let unauthenticated = (ErrorCode::Unauthenticated, "UNAUTHENTICATED".to_owned());
    let denied = (ErrorCode::PermissionDenied, "PERMISSION_DENIED".to_owned());
    runtime().block_on(async {
        for (door, protocol, json) in DOORS {
            let anonymous = clients(&base, None, protocol, json);
            let answer = anonymous
                .sessions
                .create_session(login_request(by_name("target"), RIGHT))
                .await;
            assert_eq!(failure(answer), unauthenticated, "{door}");
            let answer = anonymous.v3.set_password(set_password("target")).await;
            assert_eq!(failure(answer), unauthenticated, "{door}");
            let answer = anonymous
                .settings
                .get_lockout_settings(settings::GetLockoutSettingsRequest::default())
                .await;
            assert_eq!(failure(answer), unauthenticated, "{door}");

            // Another organization's user is invisible, like a missing one.
            let other_org = clients(&base, Some(&stranger), protocol, json);
            let hidden = other_org
                .v3
                .set_password(set_password("target"))
                .await
                .unwrap_err();
            let missing = other_org
                .v3
                .set_password(set_password("nobody"))
                .await
                .unwrap_err();
            assert_eq!(hidden.code, ErrorCode::NotFound, "{door}");
            assert_eq!(hidden.message, missing.message, "{door}: indistinguishable");

            // Seen, but not to be changed; no session rights without IAM_LOGIN_CLIENT.
            let reader = clients(&base, Some(&viewer), protocol, json);
            let answer = reader.v3.set_password(set_password("target")).await;
            assert_eq!(failure(answer), denied, "{door}");
            let answer = reader
                .sessions
                .create_session(login_request(by_name("target"), RIGHT))
                .await;
            assert_eq!(failure(answer), denied, "{door}");
            let answer = reader
                .v2
                .password_reset(v2::PasswordResetRequest {
                    user_id: "target".to_owned(),
                    ..Default::default()
                })
                .await;
            assert_eq!(failure(answer), denied, "{door}");
        }
    });
    // Nothing was changed: the first password still logs in.
    let frontend = login_client(&w);
    let (status, body) = w.userd.client.call_as(
        Some(&frontend),
        "POST",
        "/v2/sessions",
        Some(
            &json!({"checks": {"user": {"loginName": "target"}, "password": {"password": RIGHT}}})
                .to_string(),
        ),
    );
    assert_eq!(status, 201, "{body}");
}

fn contact_rpcs_through_each_protocol(db: TestDatabase) {
    use v3::__buffa::oneof::set_email::Verification as EmailVerification;
    let w = World::new(db);
    let base = w.userd.rpc_base();
    let admin = w.userd.token.clone();
    runtime().block_on(async {
        for (door, protocol, json) in DOORS {
            let admin = clients(&base, Some(&admin), protocol, json);
            let id = format!("{door}-contact");
            admin
                .v3
                .create_user(v3::CreateUserRequest {
                    organization: home(&w),
                    user: MessageField::some(v3::CreateUser {
                        user_id: Some(id.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap();
            let contact_of = |user: v3::GetUserResponse| user.user.contact.clone();
            let get = || v3::GetUserRequest {
                id: id.clone(),
                ..Default::default()
            };

            // v3alpha: a code returned to the caller proves the address.
            let set = admin
                .v3
                .set_contact_email(v3::SetContactEmailRequest {
                    id: id.clone(),
                    email: MessageField::some(v3::SetEmail {
                        address: format!("{id}@example.com"),
                        verification: Some(EmailVerification::ReturnCode(Box::default())),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            let code = set.verification_code.expect("returnCode returns the code");
            let contact = contact_of(admin.v3.get_user(get()).await.unwrap().into_owned());
            assert!(!contact.email.is_verified, "{door}");
            let wrong = admin
                .v3
                .verify_contact_email(v3::VerifyContactEmailRequest {
                    id: id.clone(),
                    verification_code: "WRONG234".into(),
                    ..Default::default()
                })
                .await;
            assert_eq!(
                failure(wrong),
                (ErrorCode::InvalidArgument, "INVALID_CODE".to_owned()),
                "{door}"
            );
            admin
                .v3
                .verify_contact_email(v3::VerifyContactEmailRequest {
                    id: id.clone(),
                    verification_code: code,
                    ..Default::default()
                })
                .await
                .unwrap();
            let contact = contact_of(admin.v3.get_user(get()).await.unwrap().into_owned());
            assert!(contact.email.is_verified, "{door}");

            // Sending needs a notifier, which this userd has not.
            let send = admin
                .v3
                .set_contact_phone(v3::SetContactPhoneRequest {
                    id: id.clone(),
                    phone: MessageField::some(v3::SetPhone {
                        number: "+41790000002".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await;
            assert_eq!(
                failure(send),
                (
                    ErrorCode::FailedPrecondition,
                    "NOTIFICATIONS_NOT_CONFIGURED".to_owned()
                ),
                "{door}"
            );

            // v2: set a phone, resend its code (the first one is void), verify.
            let set = admin
                .v2
                .set_phone(v2::SetPhoneRequest {
                    user_id: id.clone(),
                    phone: "+41790000003".into(),
                    verification: Some(
                        v2::__buffa::oneof::set_phone_request::Verification::ReturnCode(
                            Box::default(),
                        ),
                    ),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            let first = set.verification_code.unwrap();
            let resent = admin
                .v2
                .resend_phone_code(v2::ResendPhoneCodeRequest {
                    user_id: id.clone(),
                    verification: Some(
                        v2::__buffa::oneof::resend_phone_code_request::Verification::ReturnCode(
                            Box::default(),
                        ),
                    ),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            let verify_phone = |code: String| v2::VerifyPhoneRequest {
                user_id: id.clone(),
                verification_code: code,
                ..Default::default()
            };
            let void = admin.v2.verify_phone(verify_phone(first)).await;
            assert_eq!(failure(void).1, "INVALID_CODE", "{door}");
            admin
                .v2
                .verify_phone(verify_phone(resent.verification_code.unwrap()))
                .await
                .unwrap();
            let contact = contact_of(admin.v3.get_user(get()).await.unwrap().into_owned());
            assert_eq!(contact.phone.number, "+41790000003");
            assert!(contact.phone.is_verified, "{door}");

            // v2: an administrator vouches for a new address; resending then is refused.
            admin
                .v2
                .set_email(v2::SetEmailRequest {
                    user_id: id.clone(),
                    email: format!("{id}@vouched.example.com"),
                    verification: Some(
                        v2::__buffa::oneof::set_email_request::Verification::IsVerified(true),
                    ),
                    ..Default::default()
                })
                .await
                .unwrap();
            let resend = admin
                .v2
                .resend_email_code(v2::ResendEmailCodeRequest {
                    user_id: id.clone(),
                    verification: Some(
                        v2::__buffa::oneof::resend_email_code_request::Verification::ReturnCode(
                            Box::default(),
                        ),
                    ),
                    ..Default::default()
                })
                .await;
            assert_eq!(
                failure(resend),
                (
                    ErrorCode::FailedPrecondition,
                    "EMAIL_ALREADY_VERIFIED".to_owned()
                ),
                "{door}"
            );
            let verify = admin
                .v2
                .verify_email(v2::VerifyEmailRequest {
                    user_id: id.clone(),
                    ..Default::default()
                })
                .await;
            assert_eq!(failure(verify).1, "INVALID_CODE", "{door}: an empty code");
        }
    });
    // AddHumanUser hands back the code it was asked to return; VerifyEmail takes it.
    runtime().block_on(async {
        for (door, protocol, json) in DOORS {
            let admin = clients(&base, Some(&w.userd.token), protocol, json);
            let added = admin
                .v2
                .add_human_user(v2::AddHumanUserRequest {
                    username: Some(format!("{door}-coded")),
                    email: MessageField::some(v2::SetHumanEmail {
                        email: format!("{door}-coded@example.com"),
                        verification: Some(
                            v2::__buffa::oneof::set_human_email::Verification::ReturnCode(
                                Box::default(),
                            ),
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            let code = added.email_code.expect("return_code returns the code");
            admin
                .v2
                .verify_email(v2::VerifyEmailRequest {
                    user_id: added.user_id.clone(),
                    verification_code: code,
                    ..Default::default()
                })
                .await
                .unwrap();
            let (_, user) = w.userd.user(&added.user_id);
            assert_eq!(
                user["user"]["contact"]["email"]["isVerified"], true,
                "{door}"
            );
        }
    });
    // Read over REST what RPC set.
    let (_, user) = w.userd.user("grpc-contact");
    assert_eq!(
        user["user"]["contact"]["email"],
        json!({"address": "grpc-contact@vouched.example.com", "isVerified": true})
    );
}
