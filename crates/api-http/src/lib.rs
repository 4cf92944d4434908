//! userd's HTTP adapter: the routes of the API contract, its JSON conventions and its
//! error format, on actix-web. It talks to the application only through
//! [`userd_ports::service::UserService`].

mod body;
mod dto;
mod error;
mod handlers;
mod observability;
mod openapi;
mod request_context;
mod routes;
mod search;

pub use body::MAX_BODY_BYTES;
pub use error::{ApiError, grpc_code, http_status};
pub use observability::Metrics;
pub use openapi::ApiDoc;
pub use request_context::RequestId;
pub use routes::{Services, app, served_routes};
