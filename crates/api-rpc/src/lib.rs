//! userd's RPC adapter: ZITADEL's user services over gRPC, gRPC-web and Connect, on one
//! port, through connectrpc (one handler serves all three protocols). It turns messages
//! into the use cases' types and back; every rule lives in the domain and the use cases.

mod caller;
mod contact;
mod convert;
mod convert_v2;
mod errors;
mod grpc_unary;
mod idle;
mod observability;
mod passwords;
mod server;
mod sessions;
mod settings;
mod users_v2;
mod users_v3alpha;

pub use observability::RpcMetrics;
pub use server::{
    ConnectionLimits, RpcServer, WorkerInbox, Workers, accept, router, serve_connections, workers,
};

/// The code generated from `proto/` (see `build.rs`).
#[allow(
    elided_lifetimes_in_paths,
    unreachable_pub,
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
pub mod proto {
    connectrpc::include_generated!();
}
