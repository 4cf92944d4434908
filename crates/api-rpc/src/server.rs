//! The RPC listener: one port for gRPC (HTTP/2 cleartext), gRPC-web and Connect, with
//! `grpc.health.v1.Health` and server reflection beside ZITADEL's services.

use std::future::Future;
use std::sync::Arc;

use connectrpc::{ConnectError, Router};
use connectrpc_health::{Checker, HealthService, Status};
use connectrpc_reflection::Reflector;
use userd_ports::contact::ContactService;
use userd_ports::login::LoginService;
use userd_ports::service::UserService;

use crate::observability::{Observe, RpcMetrics};
use crate::proto::zitadel::resources::user::v3alpha::ZITADEL_USERS_SERVICE_NAME;
use crate::proto::zitadel::session::v2::SESSION_SERVICE_SERVICE_NAME;
use crate::proto::zitadel::settings::v2::SETTINGS_SERVICE_SERVICE_NAME;
use crate::proto::zitadel::user::v2::USER_SERVICE_SERVICE_NAME;
use crate::sessions::SessionsV2;
use crate::settings::SettingsV2;
use crate::users_v2::UsersV2;
use crate::users_v3alpha::UsersV3alpha;

/// The descriptors of every served file, for reflection.
const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/userd.fds.bin"));

/// What the RPC adapter serves with.
#[derive(Clone)]
pub struct RpcServer {
    pub users: Arc<dyn UserService>,
    pub login: Arc<dyn LoginService>,
    pub contact: Arc<dyn ContactService>,
    pub metrics: RpcMetrics,
}

/// SERVING while the database answers, for the whole server ("") and each service.
struct DatabaseHealth {
    users: Arc<dyn UserService>,
}

impl Checker for DatabaseHealth {
    async fn check(&self, service: &str) -> Result<Status, ConnectError> {
        let known = [
            ZITADEL_USERS_SERVICE_NAME,
            USER_SERVICE_SERVICE_NAME,
            SESSION_SERVICE_SERVICE_NAME,
            SETTINGS_SERVICE_SERVICE_NAME,
        ];
        if !service.is_empty() && !known.contains(&service) {
            return Err(ConnectError::not_found(format!(
                "unknown service {service:?}"
            )));
        }
        Ok(match self.users.readiness().await {
            Ok(()) => Status::Serving,
            Err(_) => Status::NotServing,
        })
    }
}

/// The router of every served service.
pub fn router(services: &RpcServer) -> Result<Router, ConnectError> {
    let (users, login, contact) = (&services.users, &services.login, &services.contact);
    let router = Router::new()
        .add_service(Arc::new(UsersV3alpha::new(
            users.clone(),
            login.clone(),
            contact.clone(),
        )))
        .add_service(Arc::new(UsersV2::new(
            users.clone(),
            login.clone(),
            contact.clone(),
        )))
        .add_service(Arc::new(SessionsV2::new(users.clone(), login.clone())))
        .add_service(Arc::new(SettingsV2::new(users.clone(), login.clone())));
    let health = HealthService::new(DatabaseHealth {
        users: services.users.clone(),
    });
    let router = connectrpc_health::apply_request_limits(
        router.add_service(Arc::new(health)),
        connectrpc_health::request_limits(),
    );
    let reflector = Reflector::from_descriptor_set_bytes(DESCRIPTORS)
        .map_err(|e| ConnectError::internal(format!("reflection descriptors: {e}")))?;
    Ok(connectrpc_reflection::install(router, reflector))
}

/// Serves until `shutdown` completes, then lets calls in flight finish.
pub async fn serve(
    services: RpcServer,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(&services).map_err(std::io::Error::other)?;
    let service = connectrpc::ConnectRpcService::new(router).with_interceptor(Observe {
        metrics: services.metrics,
    });
    connectrpc::Server::from_listener(listener)
        // userd's messages are a few hundred bytes: hyper's default 64 KiB windows never
        // fill, and the adaptive window would cost a PING round trip on the connection
        // for every request body it samples.
        .with_http2_adaptive_window(false)
        .serve_with_service_and_shutdown(service, shutdown)
        .await
        .map_err(std::io::Error::other)
}
