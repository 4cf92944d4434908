//! ZITADEL's user services over gRPC, gRPC-web and Connect, against the real binary,
//! through a real RPC client library (connectrpc's), on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use buffa::MessageField;
use connectrpc::client::{ClientConfig, HttpClient};
use connectrpc::{ErrorCode, Protocol};
use support::rpc::{DOORS, connection, reason, runtime};
use support::{USERS, World};
use userd_api_rpc::proto::zitadel::object::v3alpha::__buffa::oneof::organization::Property;
use userd_api_rpc::proto::zitadel::object::v3alpha::Organization;
use userd_api_rpc::proto::zitadel::resources::user::v3alpha::*;
use userd_testkit::{TestDatabase, on_both_backends_blocking};

on_both_backends_blocking!(
    every_v3alpha_rpc_through_each_protocol,
    one_user_three_doors,
    the_authorization_order_holds_over_rpc,
    health_reflection_metrics_and_logs,
    the_v2_lifecycle_through_each_protocol,
    both_listeners_stop_together,
    idle_connections_are_closed,
    the_common_grpc_call_answers_as_connectrpc_does,
);

fn client(
    base: &str,
    token: Option<&str>,
    protocol: Protocol,
    json: bool,
) -> ZitadelUsersClient<HttpClient> {
    let (transport, config) = connection(base, token, protocol, json);
    ZitadelUsersClient::new(transport, config)
}

fn lock(id: &str) -> LockUserRequest {
    LockUserRequest {
        id: id.to_owned(),
        ..Default::default()
    }
}

fn unlock(id: &str) -> UnlockUserRequest {
    UnlockUserRequest {
        id: id.to_owned(),
        ..Default::default()
    }
}

fn get(id: &str) -> GetUserRequest {
    GetUserRequest {
        id: id.to_owned(),
        ..Default::default()
    }
}

fn every_v3alpha_rpc_through_each_protocol(db: TestDatabase) {
    let w = World::new(db);
    let base = w.userd.rpc_base();
    let token = w.userd.token.clone();
    runtime().block_on(async {
        for (door, protocol, json) in DOORS {
            let users = client(&base, Some(&token), protocol, json);
            let id = format!("{door}-user");
            let create = CreateUserRequest {
                organization: MessageField::some(Organization {
                    property: Some(Property::OrgId(w.home.clone())),
                    ..Default::default()
                }),
                user: MessageField::some(CreateUser {
                    user_id: Some(id.clone()),
                    contact: MessageField::some(SetContact {
                        email: MessageField::some(SetEmail {
                            address: format!("{door}@example.com"),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    authenticators: MessageField::some(SetAuthenticators {
                        usernames: vec![SetUsername {
                            username: format!("{door}-name"),
                            is_organization_specific: true,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let created = users.create_user(create).await.unwrap().into_owned();
            assert_eq!(created.details.id, id, "{door}");
            assert_eq!(created.details.owner.id, w.home, "{door}");

            let got = users.get_user(get(&id)).await.unwrap().into_owned();
            assert_eq!(
                got.user.state.as_known(),
                Some(State::USER_STATE_ACTIVE),
                "{door}"
            );
            assert_eq!(
                got.user.contact.email.address,
                format!("{door}@example.com")
            );
            assert_eq!(
                got.user.authenticators.usernames[0].username,
                format!("{door}-name")
            );

            let patch = PatchUserRequest {
                id: id.clone(),
                user: MessageField::some(PatchUser {
                    schema_id: Some("employee".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            users.patch_user(patch).await.unwrap();
            users.lock_user(lock(&id)).await.unwrap();
            let locked = users.get_user(get(&id)).await.unwrap().into_owned();
            assert_eq!(locked.user.state.as_known(), Some(State::USER_STATE_LOCKED));
            assert_eq!(locked.user.schema.id, "employee");
            users.unlock_user(unlock(&id)).await.unwrap();
            let again = users.unlock_user(unlock(&id)).await.unwrap_err();
            assert_eq!(
                again.code,
                ErrorCode::FailedPrecondition,
                "{door}: {again:?}"
            );
            assert_eq!(reason(&again), "USER_NOT_LOCKED", "{door}");
            assert_eq!(again.message.as_deref(), Some("user is not locked"));

            users
                .deactivate_user(DeactivateUserRequest {
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            users
                .activate_user(ActivateUserRequest {
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();

            let search = SearchUsersRequest {
                filters: vec![SearchFilter {
                    Filter: Some(__buffa::oneof::search_filter::Filter::UserIdFilter(
                        Box::new(UserIDFilter {
                            id: id.clone(),
                            ..Default::default()
                        }),
                    )),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let found = users.search_users(search).await.unwrap().into_owned();
            assert_eq!(found.details.total_result, 1, "{door}");
            assert_eq!(found.result[0].details.id, id);

            users
                .delete_user(DeleteUserRequest {
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let gone = users.get_user(get(&id)).await.unwrap_err();
            assert_eq!(gone.code, ErrorCode::NotFound, "{door}");
            assert_eq!(reason(&gone), "USER_NOT_FOUND");
        }
    });
}

fn one_user_three_doors(db: TestDatabase) {
    let w = World::new(db);
    w.user("door", &w.home);
    let base = w.userd.rpc_base();
    let token = w.userd.token.clone();
    runtime().block_on(async {
        let grpc = client(&base, Some(&token), Protocol::Grpc, false);
        let connect = client(&base, Some(&token), Protocol::Connect, true);
        let read = grpc.get_user(get("door")).await.unwrap().into_owned();
        assert_eq!(read.user.contact.email.address, "door@example.com");
        assert!(read.user.contact.email.is_verified);
        grpc.lock_user(lock("door")).await.unwrap();
        let (status, body) = w.userd.user("door");
        assert_eq!(
            (status, body["user"]["state"].as_str()),
            (200, Some("USER_STATE_LOCKED"))
        );
        connect.unlock_user(unlock("door")).await.unwrap();
    });
    let (_, body) = w.userd.user("door");
    assert_eq!(body["user"]["state"], "USER_STATE_ACTIVE");
    assert!(body["user"].get("locked").is_none());
    assert_eq!(
        w.userd.act("door", "_unlock").0,
        400,
        "one state machine behind both"
    );
}

fn the_authorization_order_holds_over_rpc(db: TestDatabase) {
    let w = World::new(db);
    w.user("target", &w.home);
    w.user("viewer", &w.home);
    w.grant(&w.home, "viewer", &["ORG_USER_VIEWER"]);
    w.user("stranger", &w.away);
    w.grant(&w.away, "stranger", &["ORG_OWNER"]);
    let viewer = w.token("viewer");
    let stranger = w.token("stranger");
    let base = w.userd.rpc_base();
    runtime().block_on(async {
        for (door, protocol, json) in DOORS {
            let anonymous = client(&base, None, protocol, json);
            let error = anonymous.lock_user(lock("target")).await.unwrap_err();
            assert_eq!(
                (error.code, reason(&error).as_str()),
                (ErrorCode::Unauthenticated, "UNAUTHENTICATED"),
                "{door}"
            );

            let other_org = client(&base, Some(&stranger), protocol, json);
            let error = other_org.lock_user(lock("target")).await.unwrap_err();
            assert_eq!(
                error.code,
                ErrorCode::NotFound,
                "{door}: invisible, like a missing user"
            );
            let missing = other_org.lock_user(lock("nobody")).await.unwrap_err();
            assert_eq!(missing.code, ErrorCode::NotFound);
            assert_eq!(missing.message, error.message, "{door}: indistinguishable");

            let reader = client(&base, Some(&viewer), protocol, json);
            assert!(reader.get_user(get("target")).await.is_ok(), "{door}");
            let error = reader.lock_user(lock("target")).await.unwrap_err();
            assert_eq!(
                (error.code, reason(&error).as_str()),
                (ErrorCode::PermissionDenied, "PERMISSION_DENIED"),
                "{door}"
            );
        }
    });
    assert_eq!(
        w.userd.get(&format!("{USERS}/target")).1["user"]["state"],
        "USER_STATE_ACTIVE",
        "nothing was changed"
    );
}

fn health_reflection_metrics_and_logs(db: TestDatabase) {
    use connectrpc_health::HealthClient;
    use connectrpc_health::wire::{HealthCheckRequest, ServingStatus};
    use connectrpc_reflection::ServerReflectionClient;
    use connectrpc_reflection::wire::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };

    let w = World::new(db);
    w.user("seen", &w.home);
    let base = w.userd.rpc_base();
    let token = w.userd.token.clone();
    let mark = w.userd.log_len();
    runtime().block_on(async {
        let config = ClientConfig::new(base.parse().unwrap()).with_protocol(Protocol::Grpc);
        let health = HealthClient::new(HttpClient::plaintext_http2_only(), config.clone());
        for service in ["", "zitadel.resources.user.v3alpha.ZITADELUsers"] {
            let answer = health
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            assert_eq!(
                answer.status.as_known(),
                Some(ServingStatus::SERVING),
                "{service:?}"
            );
        }

        // What grpcurl does first: list the services, then fetch a service's file.
        let reflection = ServerReflectionClient::new(HttpClient::plaintext_http2_only(), config);
        let mut stream = reflection.server_reflection_info().await.unwrap();
        for request in [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol(
                "zitadel.resources.user.v3alpha.ZITADELUsers".to_owned(),
            ),
        ] {
            stream
                .send(ServerReflectionRequest {
                    message_request: Some(request),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        stream.close_send();
        let listed = stream.message().await.unwrap().unwrap().to_owned_message();
        let Some(MessageResponse::ListServicesResponse(listed)) = listed.message_response else {
            panic!("not a service list: {listed:?}");
        };
        let names: Vec<&str> = listed.service.iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.contains(&"zitadel.resources.user.v3alpha.ZITADELUsers"),
            "{names:?}"
        );
        assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
        let file = stream.message().await.unwrap().unwrap().to_owned_message();
        let Some(MessageResponse::FileDescriptorResponse(file)) = file.message_response else {
            panic!("not a file: {file:?}");
        };
        let described = file
            .file_descriptor_proto
            .iter()
            .any(|bytes| String::from_utf8_lossy(bytes).contains("UnlockUser"));
        assert!(described, "the service's file describes UnlockUser");

        let users = client(&base, Some(&token), Protocol::Grpc, false);
        users.lock_user(lock("seen")).await.unwrap();
        users.unlock_user(unlock("seen")).await.unwrap();
        assert!(users.unlock_user(unlock("seen")).await.is_err());
    });

    let line = w.userd.wait_for_log(mark, "USER_NOT_LOCKED");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["message"], "rpc served", "{entry}");
    assert_eq!(entry["code"], "failed_precondition");
    assert_eq!(entry["span"]["method"], "UnlockUser");
    assert_eq!(
        entry["span"]["service"],
        "zitadel.resources.user.v3alpha.ZITADELUsers"
    );
    assert_eq!(entry["span"]["protocol"], "grpc");
    assert!(
        entry["span"]["user_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{entry}"
    );
    assert!(
        !w.userd.log.lock().unwrap().join("\n").contains(&token),
        "tokens are never logged"
    );

    let (status, metrics) = w.userd.client.get_text("/metrics");
    assert_eq!(status, 200);
    let ok = metrics.lines().find(|l| {
        l.starts_with("userd_rpc_requests_total")
            && l.contains(r#"method="UnlockUser""#)
            && l.contains(r#"code="ok""#)
    });
    assert_eq!(
        ok.map(|l| l.rsplit(' ').next().unwrap()),
        Some("1"),
        "{metrics}"
    );
    let refused = metrics.lines().find(|l| {
        l.starts_with("userd_rpc_requests_total")
            && l.contains(r#"method="UnlockUser""#)
            && l.contains(r#"code="failed_precondition""#)
    });
    assert_eq!(
        refused.map(|l| l.rsplit(' ').next().unwrap()),
        Some("1"),
        "{metrics}"
    );
    assert!(metrics.contains("userd_rpc_request_duration_seconds_bucket"));
}

fn the_v2_lifecycle_through_each_protocol(db: TestDatabase) {
    use userd_api_rpc::proto::zitadel::user::v2;

    let w = World::new(db);
    let base = w.userd.rpc_base();
    let token = w.userd.token.clone();
    runtime().block_on(async {
        for (door, protocol, json) in DOORS {
            let (transport, config) = connection(&base, Some(&token), protocol, json);
            let users = v2::UserServiceClient::new(transport, config);
            let added = users
                .add_human_user(v2::AddHumanUserRequest {
                    username: Some(format!("{door}-v2")),
                    profile: MessageField::some(v2::SetHumanProfile {
                        given_name: "Minnie".to_owned(),
                        family_name: "Mouse".to_owned(),
                        ..Default::default()
                    }),
                    email: MessageField::some(v2::SetHumanEmail {
                        email: format!("{door}-v2@example.com"),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            let id = added.user_id.clone();
            assert_eq!(added.details.resource_owner, w.home, "{door}");
            let by_id = |id: &str| v2::GetUserByIDRequest {
                user_id: id.to_owned(),
                ..Default::default()
            };
            let got = users.get_user_by_id(by_id(&id)).await.unwrap().into_owned();
            assert_eq!(got.user.username, format!("{door}-v2"));
            let Some(v2::__buffa::oneof::user::Type::Human(human)) = &got.user.r#type else {
                panic!("{door}: not a human: {got:?}");
            };
            assert_eq!(human.profile.given_name, "Minnie");

            users
                .update_human_user(v2::UpdateHumanUserRequest {
                    user_id: id.clone(),
                    profile: MessageField::some(v2::SetHumanProfile {
                        given_name: "Minerva".to_owned(),
                        family_name: "Mouse".to_owned(),
                        nick_name: Some("Min".to_owned()),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap();
            let lock = v2::LockUserRequest {
                user_id: id.clone(),
                ..Default::default()
            };
            users.lock_user(lock).await.unwrap();
            let unlock = || v2::UnlockUserRequest {
                user_id: id.clone(),
                ..Default::default()
            };
            users.unlock_user(unlock()).await.unwrap();
            let again = users.unlock_user(unlock()).await.unwrap_err();
            assert_eq!(
                (again.code, reason(&again).as_str()),
                (ErrorCode::FailedPrecondition, "USER_NOT_LOCKED")
            );
            users
                .deactivate_user(v2::DeactivateUserRequest {
                    user_id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            users
                .reactivate_user(v2::ReactivateUserRequest {
                    user_id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let listed = users
                .list_users(v2::ListUsersRequest {
                    queries: vec![v2::SearchQuery {
                        query: Some(v2::__buffa::oneof::search_query::Query::InUserIdsQuery(
                            Box::new(v2::InUserIDQuery {
                                user_ids: vec![id.clone()],
                                ..Default::default()
                            }),
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            assert_eq!(listed.details.total_result, 1, "{door}");
            assert_eq!(
                listed.result[0].state.as_known(),
                Some(v2::UserState::USER_STATE_ACTIVE)
            );

            // The same user over REST: the profile is data, the e-mail the contact.
            let (status, rest) = w.userd.user(&id);
            assert_eq!(status, 200);
            assert_eq!(rest["user"]["data"]["givenName"], "Minerva");
            assert_eq!(rest["user"]["data"]["nickName"], "Min");
            assert_eq!(
                rest["user"]["contact"]["email"]["address"],
                format!("{door}-v2@example.com")
            );

            users
                .delete_user(v2::DeleteUserRequest {
                    user_id: id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let gone = users.get_user_by_id(by_id(&id)).await.unwrap_err();
            assert_eq!(gone.code, ErrorCode::NotFound, "{door}");

            // The newer generic RPCs, for humans.
            use v2::__buffa::oneof::create_user_request::UserType as CreateType;
            use v2::__buffa::oneof::update_user_request::UserType as UpdateType;
            let created = users
                .create_user(v2::CreateUserRequest {
                    organization_id: w.home.clone(),
                    user_id: Some(format!("{door}-generic")),
                    user_type: Some(CreateType::Human(Box::new(
                        v2::create_user_request::Human {
                            profile: MessageField::some(v2::SetHumanProfile {
                                given_name: "Ada".to_owned(),
                                family_name: "Lovelace".to_owned(),
                                ..Default::default()
                            }),
                            email: MessageField::some(v2::SetHumanEmail {
                                email: format!("{door}-generic@example.com"),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    ))),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_owned();
            assert_eq!(created.id, format!("{door}-generic"));
            assert!(created.creation_date.is_set());
            users
                .update_user(v2::UpdateUserRequest {
                    user_id: created.id.clone(),
                    user_type: Some(UpdateType::Human(Box::new(
                        v2::update_user_request::Human {
                            profile: MessageField::some(v2::update_user_request::human::Profile {
                                nick_name: Some("Countess".to_owned()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    ))),
                    ..Default::default()
                })
                .await
                .unwrap();
            let (_, rest) = w.userd.user(&created.id);
            assert_eq!(
                rest["user"]["data"]["givenName"], "Ada",
                "untouched keys stay"
            );
            assert_eq!(rest["user"]["data"]["nickName"], "Countess");
            assert_eq!(
                rest["user"]["authenticators"]["usernames"][0]["username"],
                format!("{door}-generic@example.com"),
                "the e-mail is the username by default"
            );
            let machine = users
                .create_user(v2::CreateUserRequest {
                    user_type: Some(CreateType::Machine(Box::default())),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(
                (machine.code, reason(&machine).as_str()),
                (ErrorCode::InvalidArgument, "UNSUPPORTED_USER_TYPE")
            );
        }
    });
}

fn both_listeners_stop_together(db: TestDatabase) {
    let mut userd = support::Userd::start(db);
    let rpc = userd.rpc_base();
    let rpc_address = rpc.trim_start_matches("http://").parse().unwrap();
    let http_address = userd.base.trim_start_matches("http://").parse().unwrap();
    let timeout = std::time::Duration::from_secs(2);
    // Both servers have answered, so both watch for the stop signal.
    assert_eq!(userd.get("/healthz").0, 200);
    runtime().block_on(async {
        let users = client(&rpc, Some(&userd.token), Protocol::Connect, true);
        assert_eq!(
            users.get_user(get("nobody")).await.unwrap_err().code,
            ErrorCode::NotFound
        );
    });
    let pid = userd.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = userd.exit_status() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "userd did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0), "{}", userd.log_tail(10));
    assert!(userd.log_tail(3).contains("stopped"));
    for address in [rpc_address, http_address] {
        assert!(
            std::net::TcpStream::connect_timeout(&address, timeout).is_err(),
            "{address} still accepts"
        );
    }
}

/// Reads a connection until the server closes it; returns what it sent.
fn read_until_closed(mut stream: std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    // Far beyond the idle timeout under test, and short of the 30 s first-bytes deadline
    // that closes a silent connection anyway.
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut received = Vec::new();
    stream
        .read_to_end(&mut received)
        .expect("the server closes the idle connection");
    received
}

fn idle_connections_are_closed(db: TestDatabase) {
    let userd = support::Userd::start_with(db, &[("USERD__SERVER__KEEP_ALIVE_SECS", "1")]);
    let rpc = userd.rpc_base();
    let address: std::net::SocketAddr = rpc.trim_start_matches("http://").parse().unwrap();
    runtime().block_on(async {
        let users = client(&rpc, Some(&userd.token), Protocol::Grpc, false);
        let missing = users.get_user(get("nobody")).await.unwrap_err();
        assert_eq!(missing.code, ErrorCode::NotFound);

        // An HTTP/2 connection that carries no call ends, by the server's GOAWAY, once
        // idle: not at once, and not never. (The client's `ready` handle is kept, so the
        // client does not end it.)
        let opened = std::time::Instant::now();
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let (_ready, connection) = h2::client::handshake(tcp).await.unwrap();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(20), connection)
            .await
            .expect("the server closes the idle connection");
        assert!(ended.is_ok(), "a graceful close: {ended:?}");
        assert!(opened.elapsed() >= std::time::Duration::from_secs(1));

        // The client's connection has been idle as long: closed too, and the client goes
        // on over a new one.
        let missing = users.get_user(get("nobody")).await.unwrap_err();
        assert_eq!(missing.code, ErrorCode::NotFound);
    });

    // A connection that never says which protocol it speaks is closed once idle too.
    let silent = std::net::TcpStream::connect(address).unwrap();
    assert!(read_until_closed(silent).is_empty());
}

/// What one raw HTTP/2 gRPC call got back: status, headers (without `date`), the body's
/// bytes and the trailers.
type RawAnswer = (u16, http::HeaderMap, Vec<u8>, Option<http::HeaderMap>);

/// Sends one gRPC call frame by frame on its own HTTP/2 connection, as any client's
/// bytes would arrive.
async fn raw_grpc_call(
    address: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    frames: &[&[u8]],
) -> RawAnswer {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let (sender, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut sender = sender.ready().await.unwrap();
    let mut request = http::Request::post(format!("http://{address}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (answer, mut stream) = sender
        .send_request(request.body(()).unwrap(), frames.is_empty())
        .unwrap();
    for (i, frame) in frames.iter().enumerate() {
        stream
            .send_data(bytes::Bytes::copy_from_slice(frame), i + 1 == frames.len())
            .unwrap();
    }
    let (mut head, mut body) = answer.await.unwrap().into_parts();
    head.headers.remove(http::header::DATE);
    let mut received = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap();
    (head.status.as_u16(), head.headers, received, trailers)
}

/// A message in gRPC's envelope: flags, length, bytes.
fn enveloped(flags: u8, message: &[u8]) -> Vec<u8> {
    let mut framed = vec![flags];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

/// The common gRPC call is served without connectrpc's HTTP layer (a measured fast
/// path); whatever it answers must be what connectrpc answers, byte for byte. A
/// `grpc-timeout` sends the same call through connectrpc, so each call is made both ways.
fn the_common_grpc_call_answers_as_connectrpc_does(db: TestDatabase) {
    use buffa::Message;
    let w = World::new(db);
    w.user("same", &w.home);
    let rpc = w.userd.rpc_base();
    let address: std::net::SocketAddr = rpc.trim_start_matches("http://").parse().unwrap();
    let bearer = format!("Bearer {}", w.userd.token);
    const GET: &str = "/zitadel.resources.user.v3alpha.ZITADELUsers/GetUser";
    const UNLOCK: &str = "/zitadel.resources.user.v3alpha.ZITADELUsers/UnlockUser";
    let get_same = get("same").encode_to_vec();
    let message = enveloped(0, &get_same);
    let (head, tail) = message.split_at(3);
    let two_messages = [message.clone(), message.clone()].concat();
    let compressed_flag = enveloped(1, &get_same);
    let unlock_same = enveloped(0, &unlock("same").encode_to_vec());
    let get_nobody = enveloped(0, &get("nobody").encode_to_vec());
    let garbage = enveloped(0, &[0xff, 0xff, 0xff]);
    // Past connectrpc's 4 MiB request limit: the fast path stops reading and hands
    // connectrpc what it read and the rest of the stream.
    let huge = enveloped(0, &vec![0; 4 * 1024 * 1024 + 16]);
    let (huge_start, huge_rest) = huge.split_at(1024 * 1024);

    let anonymous = vec![("content-type", "application/grpc"), ("te", "trailers")];
    let with_token = |extra: &[(&'static str, &'static str)]| {
        let mut headers = anonymous.clone();
        headers.push(("authorization", bearer.as_str()));
        headers.extend_from_slice(extra);
        headers
    };
    let authorized = with_token(&[]);
    let proto_named = with_token(&[("content-type", "application/grpc+proto")]);
    let identity = with_token(&[("grpc-encoding", "identity")]);
    let accepts_gzip = with_token(&[("grpc-accept-encoding", "gzip")]);
    type Headers<'h> = Vec<(&'h str, &'h str)>;
    let calls: Vec<(&str, &str, &Headers<'_>, Vec<&[u8]>)> = vec![
        ("a read", GET, &authorized, vec![&message]),
        (
            "a message split over two frames",
            GET,
            &authorized,
            vec![head, tail],
        ),
        ("the +proto content type", GET, &proto_named, vec![&message]),
        ("identity encoding named", GET, &identity, vec![&message]),
        ("gzip accepted", GET, &accepts_gzip, vec![&message]),
        (
            "a failed precondition",
            UNLOCK,
            &authorized,
            vec![&unlock_same],
        ),
        ("an unknown user", GET, &authorized, vec![&get_nobody]),
        ("no token", GET, &anonymous, vec![&message]),
        (
            "a message that is not protobuf",
            GET,
            &authorized,
            vec![&garbage],
        ),
        ("two messages", GET, &authorized, vec![&two_messages]),
        (
            "a compressed flag without an encoding",
            GET,
            &authorized,
            vec![&compressed_flag],
        ),
        ("a cut envelope", GET, &authorized, vec![head]),
        ("no message", GET, &authorized, vec![]),
        (
            "a body over the limit",
            GET,
            &authorized,
            vec![huge_start, huge_rest],
        ),
    ];
    runtime().block_on(async {
        for (what, path, headers, frames) in &calls {
            let fast = raw_grpc_call(address, path, headers, frames).await;
            let mut with_deadline = headers.to_vec();
            with_deadline.push(("grpc-timeout", "30S"));
            let through_connectrpc = raw_grpc_call(address, path, &with_deadline, frames).await;
            assert_eq!(fast, through_connectrpc, "{what}");
            assert_eq!(fast.0, 200, "{what}");
            let status = fast
                .3
                .as_ref()
                .or(Some(&fast.1))
                .and_then(|h| h.get("grpc-status"));
            assert!(status.is_some(), "{what}: a gRPC status in {fast:?}");
        }
    });
    // The read answered with the user, and the failures with their codes.
    let status_of = |headers: &Headers<'_>, path, frames: &[&[u8]]| {
        runtime().block_on(async {
            let (_, head, _, trailers) = raw_grpc_call(address, path, headers, frames).await;
            let from = trailers.unwrap_or(head);
            from["grpc-status"].to_str().unwrap().to_owned()
        })
    };
    assert_eq!(status_of(&authorized, GET, &[&message]), "0");
    assert_eq!(status_of(&authorized, UNLOCK, &[&unlock_same]), "9");
    assert_eq!(status_of(&authorized, GET, &[&get_nobody]), "5");
    assert_eq!(status_of(&anonymous, GET, &[&message]), "16");
    assert_eq!(status_of(&authorized, GET, &[&garbage]), "3");
    assert_eq!(status_of(&authorized, GET, &[huge_start, huge_rest]), "8");
}
