//! Reaching the RPC port through a real client library (connectrpc's), by each protocol.

use base64::Engine;
use buffa::Message;
use connectrpc::client::{ClientConfig, HttpClient};
use connectrpc::{ConnectError, Protocol};
use userd_api_rpc::proto::google::rpc::ErrorInfo;

/// The ways a client reaches the RPC port: (name, protocol, JSON rather than binary).
pub const DOORS: [(&str, Protocol, bool); 4] = [
    ("connect-json", Protocol::Connect, true),
    ("connect-proto", Protocol::Connect, false),
    ("grpc", Protocol::Grpc, false),
    ("grpc-web", Protocol::GrpcWeb, false),
];

/// The transport and settings a generated client is built from.
pub fn connection(
    base: &str,
    token: Option<&str>,
    protocol: Protocol,
    json: bool,
) -> (HttpClient, ClientConfig) {
    let mut config = ClientConfig::new(base.parse().unwrap()).with_protocol(protocol);
    config = if json { config.json() } else { config.proto() };
    if let Some(token) = token {
        config = config.with_default_header("authorization", format!("Bearer {token}"));
    }
    // gRPC is HTTP/2 with prior knowledge; gRPC-web and Connect go over HTTP/1.1 here.
    let transport = match protocol {
        Protocol::Grpc => HttpClient::plaintext_http2_only(),
        _ => HttpClient::plaintext(),
    };
    (transport, config)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The `google.rpc.ErrorInfo` reason an error carries.
pub fn reason(error: &ConnectError) -> String {
    let detail = error
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.ErrorInfo"))
        .unwrap_or_else(|| panic!("no ErrorInfo in {error:?}"));
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(detail.value.as_deref().unwrap().trim_end_matches('='))
        .unwrap();
    let info = ErrorInfo::decode_from_slice(&bytes).unwrap();
    assert_eq!(info.domain, "userd");
    info.reason
}
