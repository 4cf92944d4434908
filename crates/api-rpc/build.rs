//! Compiles the project's `.proto` files with protox (pure Rust, so no `protoc` needs to
//! be installed) and generates the message types and service traits with
//! connectrpc-build from the resulting descriptor set.

use std::path::PathBuf;

/// Every file of `proto/`: code is generated for each (imports included), so that the
/// generated modules can refer to one another.
const PROTOS: &[&str] = &[
    "google/rpc/error_details.proto",
    "zitadel/object/v3alpha/object.proto",
    "zitadel/resources/object/v3alpha/object.proto",
    "zitadel/resources/user/v3alpha/authenticator.proto",
    "zitadel/resources/user/v3alpha/communication.proto",
    "zitadel/resources/user/v3alpha/query.proto",
    "zitadel/resources/user/v3alpha/user.proto",
    "zitadel/resources/user/v3alpha/user_service.proto",
    "zitadel/object/v2/object.proto",
    "zitadel/user/v2/email.proto",
    "zitadel/user/v2/password.proto",
    "zitadel/user/v2/phone.proto",
    "zitadel/user/v2/query.proto",
    "zitadel/user/v2/user.proto",
    "zitadel/user/v2/user_service.proto",
    "zitadel/session/v2/session.proto",
    "zitadel/session/v2/session_service.proto",
    "zitadel/settings/v2/settings.proto",
    "zitadel/settings/v2/lockout_settings.proto",
    "zitadel/settings/v2/password_settings.proto",
    "zitadel/settings/v2/settings_service.proto",
];

/// Described for reflection only: their services come from other crates.
const DESCRIBED_ONLY: &[&str] = &["grpc/health/v1/health.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let descriptors = protox::Compiler::new([&root])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS.iter().chain(DESCRIBED_ONLY))?
        .file_descriptor_set();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let set = out.join("userd.fds.bin");
    std::fs::write(&set, prost::Message::encode_to_vec(&descriptors))?;
    connectrpc_build::Config::new()
        .files(PROTOS)
        .descriptor_set(&set)
        .include_file("_connectrpc.rs")
        .compile()?;
    Ok(())
}
