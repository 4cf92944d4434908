//! Who is calling: the bearer token of the `authorization` metadata, through the same
//! use case the REST adapter authenticates with.

use connectrpc::{ConnectError, RequestContext};
use userd_domain::authz::Caller;
use userd_ports::service::{Credentials, UserService};

use crate::errors::service_error;

pub(crate) async fn caller(
    users: &dyn UserService,
    ctx: &RequestContext,
) -> Result<Caller, ConnectError> {
    let value = ctx
        .header(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = users
        .authenticate(&Credentials::from_authorization(value))
        .await
        .map_err(service_error)?;
    tracing::Span::current().record("user_id", caller.user_id.as_str());
    Ok(caller)
}
