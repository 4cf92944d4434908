//! One log line and two metrics per RPC, as the HTTP adapter does per request.

use std::time::Instant;

use base64::Engine;
use buffa::Message;
use connectrpc::interceptor::{UnaryRequest, UnaryResponse};
use connectrpc::{ConnectError, Interceptor, Next, Protocol, RequestContext};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tracing::Instrument;

use crate::proto::google::rpc::ErrorInfo;

/// Named once: a header looked up by a string name is parsed on every call.
const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// RPCs by service, method and gRPC code, and their latency.
#[derive(Clone)]
pub struct RpcMetrics {
    calls: IntCounterVec,
    latency: HistogramVec,
}

impl RpcMetrics {
    pub fn new(registry: &Registry) -> Result<RpcMetrics, prometheus::Error> {
        let calls = IntCounterVec::new(
            Opts::new(
                "userd_rpc_requests_total",
                "RPCs answered, by service, method and gRPC code name.",
            ),
            &["service", "method", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "userd_rpc_request_duration_seconds",
                "Time from an RPC's arrival to its answer, by service and method.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["service", "method"],
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(RpcMetrics { calls, latency })
    }
}

/// Logs and counts every unary RPC.
pub(crate) struct Observe {
    pub metrics: RpcMetrics,
}

/// The reason of the `google.rpc.ErrorInfo` an error carries, if any.
fn reason_of(error: &ConnectError) -> Option<String> {
    let detail = error
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.ErrorInfo"))?;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(detail.value.as_deref()?.trim_end_matches('='))
        .ok()?;
    ErrorInfo::decode_from_slice(&bytes)
        .ok()
        .map(|info| info.reason)
}

/// An RPC being observed: when it started, what it is, and the span its work runs in.
pub(crate) struct ObservedCall {
    started: Instant,
    service: &'static str,
    method: &'static str,
    pub(crate) span: tracing::Span,
}

impl Observe {
    /// Starts observing the call `ctx` describes; its work runs in the returned span.
    pub(crate) fn begin(&self, ctx: &RequestContext) -> ObservedCall {
        let procedure = ctx.spec().map_or("unknown", |spec| spec.procedure);
        let (service, method) = procedure
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        let protocol = match ctx.protocol() {
            Some(Protocol::Grpc) => "grpc",
            Some(Protocol::GrpcWeb) => "grpcweb",
            Some(Protocol::Connect) => "connect",
            // The enum is non-exhaustive: a protocol connectrpc adds later.
            Some(_) | None => "unknown",
        };
        let request_id = ctx
            .header(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| id.len() <= 128);
        let span = tracing::info_span!(
            "rpc",
            service,
            method,
            protocol,
            request_id,
            user_id = tracing::field::Empty
        );
        ObservedCall {
            started: Instant::now(),
            service,
            method,
            span,
        }
    }

    /// Counts the call and writes its log line, with its error if it failed.
    pub(crate) fn end(&self, call: ObservedCall, error: Option<&ConnectError>) {
        let seconds = call.started.elapsed().as_secs_f64();
        let (code, reason) = match error {
            None => ("ok", None),
            Some(error) => (error.code.as_str(), reason_of(error)),
        };
        let (service, method) = (call.service, call.method);
        self.metrics
            .calls
            .with_label_values(&[service, method, code])
            .inc();
        self.metrics
            .latency
            .with_label_values(&[service, method])
            .observe(seconds);
        call.span.in_scope(|| {
            tracing::info!(code, reason, latency_ms = seconds * 1000.0, "rpc served");
        });
    }
}

#[async_trait::async_trait]
impl Interceptor for Observe {
    async fn intercept_unary(
        &self,
        req: UnaryRequest,
        next: Next<'_>,
    ) -> Result<UnaryResponse, ConnectError> {
        let call = self.begin(&req.ctx);
        let outcome = next.run(req).instrument(call.span.clone()).await;
        self.end(call, outcome.as_ref().err());
        outcome
    }
}
