//! A unary gRPC call in its everyday shape, answered straight from the router.
//!
//! connectrpc's HTTP layer serves every protocol and every shape of request, and pays
//! for that on each call: protocol detection, a copy of the headers, the request
//! envelope copied into a second buffer, a response assembled through `http`'s builder,
//! and one large boxed future, whose allocation reaches glibc's slow path. Under
//! callgrind that layer was about 15,000 instructions of the RPC worker's 197,000 per
//! gRPC call, the largest part of what a gRPC call cost beyond a REST request. The
//! common call (HTTP/2, protobuf, uncompressed, no deadline, one message) needs none of
//! it, so it goes to the router's dispatch directly, through the same handlers, the same
//! [`Observe`] log line and metrics and the same error rendering. Any other request is
//! connectrpc's, whole: a request whose body turns out irregular after it has been read
//! is handed over with what was read put back in front.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header,
};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tracing::Instrument;

use connectrpc::compression::{CompressionPolicy, CompressionRegistry};
use connectrpc::{
    CodecFormat, ConnectError, ConnectRpcBody, Dispatcher, Limits, MethodKind, Protocol, Router,
    Spec,
};

use crate::observability::Observe;

// Named once: a header looked up or set by a string name is parsed on every use.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// What connectrpc answers a gRPC protobuf call with, whichever of the two names the
/// client sent.
const GRPC_PROTO: &str = "application/grpc+proto";
/// The envelope in front of each gRPC message: a flags byte and a 4-byte length.
const ENVELOPE_HEAD: usize = 5;
const COMPRESSED: u8 = 1;

/// Serves the common gRPC unary call; tells which requests are one.
pub(crate) struct GrpcUnary {
    router: Arc<Router>,
    observe: Arc<Observe>,
    limits: Limits,
    compression: CompressionRegistry,
    policy: CompressionPolicy,
    /// `grpc-accept-encoding` of every answer, as connectrpc sends it.
    accept_encoding: Option<HeaderValue>,
}

/// A request body as connectrpc receives it: untouched, or what the fast path had read
/// of it put back in front of the rest.
pub(crate) struct RequestBody {
    read: Option<Bytes>,
    trailers: Option<HeaderMap>,
    rest: Option<Incoming>,
}

impl RequestBody {
    pub(crate) fn untouched(body: Incoming) -> Self {
        RequestBody {
            read: None,
            trailers: None,
            rest: Some(body),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(read) = self.read.take() {
            return Poll::Ready(Some(Ok(Frame::data(read))));
        }
        if let Some(rest) = &mut self.rest {
            match Pin::new(rest).poll_frame(cx) {
                Poll::Ready(None) => self.rest = None,
                other => return other,
            }
        }
        Poll::Ready(
            self.trailers
                .take()
                .map(|trailers| Ok(Frame::trailers(trailers))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_none()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.rest.as_ref().map(Body::size_hint).unwrap_or_default();
        if let Some(read) = &self.read {
            let read = read.len() as u64;
            hint.set_lower(hint.lower().saturating_add(read));
            if let Some(upper) = hint.upper() {
                hint.set_upper(upper.saturating_add(read));
            }
        }
        hint
    }
}

/// An answer: connectrpc's, or one made whole here (a unary gRPC call's message and
/// trailers).
pub(crate) enum AnswerBody {
    Connect(ConnectRpcBody),
    Buffered {
        data: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            AnswerBody::Connect(body) => Pin::new(body).poll_frame(cx),
            AnswerBody::Buffered { data, trailers } => Poll::Ready(
                data.take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(Frame::trailers))
                    .map(Ok),
            ),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AnswerBody::Connect(body) => body.is_end_stream(),
            AnswerBody::Buffered { data, trailers } => data.is_none() && trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AnswerBody::Connect(body) => body.size_hint(),
            AnswerBody::Buffered { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

/// Whether the fast path served the call, or connectrpc must, with this request.
pub(crate) enum Served {
    Answered(Response<AnswerBody>),
    NotMine(Request<RequestBody>),
}

impl GrpcUnary {
    pub(crate) fn new(router: Arc<Router>, observe: Arc<Observe>) -> Self {
        // connectrpc's own defaults, which its service uses for every other request.
        let compression = CompressionRegistry::default();
        let accept_encoding = Some(compression.accept_encoding_header())
            .filter(|accept| !accept.is_empty())
            .and_then(|accept| HeaderValue::from_str(accept).ok());
        GrpcUnary {
            router,
            observe,
            limits: Limits::default(),
            compression,
            policy: CompressionPolicy::default(),
            accept_encoding,
        }
    }

    /// The method's path (without its leading `/`) and spec when `request` is a call in the
    /// common shape to a unary method: gRPC over HTTP/2, protobuf, no compressed request,
    /// no deadline (connectrpc's default policy imposes none when the client sets none),
    /// and no limits of the method's own.
    fn recognize<'r, B>(&self, request: &'r Request<B>) -> Option<(&'r str, Option<Spec>)> {
        if request.version() != Version::HTTP_2 || request.method() != Method::POST {
            return None;
        }
        let headers = request.headers();
        let content_type = headers.get(header::CONTENT_TYPE)?.as_bytes();
        if content_type != b"application/grpc" && content_type != GRPC_PROTO.as_bytes() {
            return None;
        }
        if headers
            .get(GRPC_ENCODING)
            .is_some_and(|encoding| encoding != "identity")
            || headers.contains_key(GRPC_TIMEOUT)
        {
            return None;
        }
        let path = request.uri().path().strip_prefix('/')?;
        let method = self.router.lookup(path)?;
        (method.kind == MethodKind::Unary && method.limits.is_none()).then_some((path, method.spec))
    }

    /// Serves `request` if it is a call in the common shape; otherwise gives it back,
    /// with anything read of its body put back, for connectrpc.
    pub(crate) async fn serve(&self, request: Request<Incoming>) -> Served {
        let Some((_, spec)) = self.recognize(&request) else {
            return Served::NotMine(request.map(RequestBody::untouched));
        };
        let (parts, body) = request.into_parts();
        let header_text = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let encoding = self.compression.negotiate_encoding(
            header_text(GRPC_ACCEPT_ENCODING),
            header_text(GRPC_ENCODING),
        );
        let message = match self.read_message(body).await {
            Ok(message) => message,
            Err(body) => return Served::NotMine(Request::from_parts(parts, body)),
        };
        let ctx = connectrpc::RequestContext::new(parts.headers)
            .with_extensions(parts.extensions)
            .with_spec(spec)
            .with_protocol(Some(Protocol::Grpc))
            .with_path(parts.uri.path())
            .with_decode_options(self.limits.decode_options());
        let payload = connectrpc::Payload::new(message, CodecFormat::Proto)
            .with_decode_options(ctx.decode_options().clone());
        let call = self.observe.begin(&ctx);
        let path = parts.uri.path().trim_start_matches('/');
        let outcome = self
            .router
            .call_unary(path, ctx, payload, CodecFormat::Proto)
            .instrument(call.span.clone())
            .await;
        self.observe.end(call, outcome.as_ref().err());
        match outcome.and_then(|answer| self.answer(answer, encoding)) {
            Ok(answer) => Served::Answered(answer),
            Err(error) => {
                let mut request_headers = HeaderMap::with_capacity(1);
                request_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(GRPC_PROTO));
                Served::Answered(
                    error
                        .into_http_response(&request_headers)
                        .map(AnswerBody::Connect),
                )
            }
        }
    }

    /// The request's one message, without its envelope; or the body, as far as it was
    /// read, for connectrpc to answer: a compressed or oversized message, more or less
    /// than one envelope, trailers, or a body that failed.
    async fn read_message(&self, mut body: Incoming) -> Result<Bytes, RequestBody> {
        let limit = self.limits.max_request_body_size();
        let mut read: Option<Bytes> = None;
        let mut more: Option<BytesMut> = None;
        let give_back = |read: Option<Bytes>, more: Option<BytesMut>, rest, trailers| RequestBody {
            read: more.map(BytesMut::freeze).or(read),
            trailers,
            rest,
        };
        loop {
            let frame = match body.frame().await {
                None => break,
                Some(Ok(frame)) => frame,
                Some(Err(_)) => return Err(give_back(read, more, None, None)),
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    return Err(give_back(
                        read,
                        more,
                        Some(body),
                        frame.into_trailers().ok(),
                    ));
                }
            };
            // Most messages come in one DATA frame: keep it as it came, copying only
            // when a second one arrives.
            match (&mut read, &mut more) {
                (None, None) => read = Some(data),
                (Some(first), None) => {
                    let mut joined = BytesMut::with_capacity(first.len() + data.len());
                    joined.extend_from_slice(first);
                    joined.extend_from_slice(&data);
                    read = None;
                    more = Some(joined);
                }
                (_, Some(joined)) => joined.extend_from_slice(&data),
            }
            let length =
                read.as_ref().map_or(0, Bytes::len) + more.as_ref().map_or(0, BytesMut::len);
            if length > limit {
                return Err(give_back(read, more, Some(body), None));
            }
        }
        let whole = more.map(BytesMut::freeze).or(read).unwrap_or_default();
        match envelope_length(&whole) {
            Some(length)
                if whole[0] & COMPRESSED == 0
                    && length == whole.len() - ENVELOPE_HEAD
                    && length <= self.limits.max_message_size() =>
            {
                Ok(whole.slice(ENVELOPE_HEAD..))
            }
            _ => Err(give_back(Some(whole), None, None, None)),
        }
    }

    /// The answer to a served call, framed as connectrpc frames it: compressed when the
    /// client accepts an encoding and the policy says so (the encoding is named whenever
    /// one was agreed, compressed or not, as connectrpc does), then the handler's own
    /// headers and trailers.
    fn answer(
        &self,
        answer: connectrpc::EncodedResponse,
        encoding: Option<&'static str>,
    ) -> Result<Response<AnswerBody>, ConnectError> {
        let connectrpc::Response {
            body,
            headers: extra_headers,
            trailers: extra_trailers,
            compress,
        } = answer;
        let message = body.into_contiguous();
        let policy = match compress {
            None => self.policy,
            Some(true) => CompressionPolicy::default().with_min_size(0),
            Some(false) => CompressionPolicy::disabled(),
        };
        let (flags, message) = match encoding.filter(|_| policy.should_compress(message.len())) {
            Some(encoding) => match self.compression.compress(encoding, &message) {
                Ok(compressed) => (COMPRESSED, compressed),
                Err(_) => (0, message),
            },
            None => (0, message),
        };
        let length = u32::try_from(message.len())
            .map_err(|_| ConnectError::internal("the answer is too large for one message"))?;
        let mut framed = BytesMut::with_capacity(ENVELOPE_HEAD + message.len());
        framed.extend_from_slice(&[flags]);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&message);

        let mut trailers = HeaderMap::with_capacity(1 + extra_trailers.len());
        trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
        for (name, value) in &extra_trailers {
            trailers.append(name, value.clone());
        }
        let mut response = Response::new(AnswerBody::Buffered {
            data: Some(framed.freeze()),
            trailers: Some(trailers),
        });
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(GRPC_PROTO));
        if let Some(encoding) = encoding {
            headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding));
        }
        if let Some(accept) = &self.accept_encoding {
            headers.insert(GRPC_ACCEPT_ENCODING, accept.clone());
        }
        for (name, value) in &extra_headers {
            headers.append(name, value.clone());
        }
        Ok(response)
    }
}

/// The length an envelope's head announces, if `bytes` holds a whole head.
fn envelope_length(bytes: &[u8]) -> Option<usize> {
    let head: [u8; 4] = bytes.get(1..ENVELOPE_HEAD)?.try_into().ok()?;
    usize::try_from(u32::from_be_bytes(head)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observability::RpcMetrics;
    use connectrpc_health::{Checker, HealthService, Status};

    struct AlwaysServing;

    impl Checker for AlwaysServing {
        async fn check(&self, _service: &str) -> Result<Status, ConnectError> {
            Ok(Status::Serving)
        }
    }

    const CHECK: &str = "/grpc.health.v1.Health/Check";
    const WATCH: &str = "/grpc.health.v1.Health/Watch";

    fn fast_path(router: Router) -> GrpcUnary {
        let metrics = RpcMetrics::new(&prometheus::Registry::new()).unwrap();
        GrpcUnary::new(Arc::new(router), Arc::new(Observe { metrics }))
    }

    fn health() -> Router {
        Router::new().add_service(Arc::new(HealthService::new(AlwaysServing)))
    }

    fn call(path: &str, headers: &[(&str, &str)]) -> http::request::Builder {
        let mut request = Request::post(path).version(Version::HTTP_2);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }

    #[test]
    fn only_the_common_unary_grpc_call_takes_the_fast_path() {
        let fast = fast_path(health());
        let grpc = [("content-type", "application/grpc")];
        let recognized = |request: http::request::Builder| {
            fast.recognize(&request.body(()).unwrap())
                .map(|(path, _)| path.to_owned())
        };
        let check = Some("grpc.health.v1.Health/Check".to_owned());
        assert_eq!(recognized(call(CHECK, &grpc)), check);
        let proto = [("content-type", GRPC_PROTO)];
        assert_eq!(recognized(call(CHECK, &proto)), check);
        let identity = [grpc[0], ("grpc-encoding", "identity")];
        assert_eq!(recognized(call(CHECK, &identity)), check);

        let not_taken = [
            call(CHECK, &grpc).version(Version::HTTP_11),
            call(CHECK, &grpc).method(Method::GET),
            call(CHECK, &[("content-type", "application/grpc-web+proto")]),
            call(CHECK, &[("content-type", "application/grpc+json")]),
            call(CHECK, &[("content-type", "application/proto")]),
            call(CHECK, &[]),
            call(CHECK, &[grpc[0], ("grpc-encoding", "gzip")]),
            call(CHECK, &[grpc[0], ("grpc-timeout", "1S")]),
            call(WATCH, &grpc),
            call("/grpc.health.v1.Health/Nope", &grpc),
            call("/", &grpc),
        ];
        for request in not_taken {
            let request = request.body(()).unwrap();
            assert!(fast.recognize(&request).is_none(), "{request:?}");
        }
    }

    #[test]
    fn a_method_with_limits_of_its_own_is_left_to_connectrpc() {
        let limited =
            connectrpc_health::apply_request_limits(health(), connectrpc_health::request_limits());
        let fast = fast_path(limited);
        let request = call(CHECK, &[("content-type", "application/grpc")]);
        assert!(fast.recognize(&request.body(()).unwrap()).is_none());
    }

    fn encoded(message: &[u8]) -> connectrpc::EncodedResponse {
        connectrpc::Response::new(connectrpc::EncodedBody::from(Bytes::copy_from_slice(
            message,
        )))
    }

    fn framed(answer: Response<AnswerBody>) -> (http::response::Parts, Bytes, HeaderMap) {
        let (head, body) = answer.into_parts();
        match body {
            AnswerBody::Buffered {
                data: Some(message),
                trailers: Some(trailers),
            } => (head, message, trailers),
            _ => panic!("not a unary answer"),
        }
    }

    #[test]
    fn an_answer_is_one_enveloped_message_then_the_status() {
        let fast = fast_path(health());
        let mut answer = encoded(b"hello");
        answer
            .headers
            .insert("x-extra", HeaderValue::from_static("1"));
        answer
            .trailers
            .insert("x-after", HeaderValue::from_static("2"));
        let (head, message, trailers) = framed(fast.answer(answer, None).unwrap());
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers[header::CONTENT_TYPE], GRPC_PROTO);
        assert_eq!(head.headers["x-extra"], "1");
        assert!(head.headers.get(GRPC_ENCODING).is_none());
        assert_eq!(&message[..], b"\0\0\0\0\x05hello");
        assert_eq!(envelope_length(&message), Some(5));
        assert_eq!(trailers[GRPC_STATUS], "0");
        assert_eq!(trailers["x-after"], "2");
    }

    #[test]
    fn an_agreed_encoding_compresses_what_the_policy_says_to() {
        let fast = fast_path(health());
        // Small: named but not compressed, as connectrpc answers.
        let (head, message, _) = framed(fast.answer(encoded(b"small"), Some("gzip")).unwrap());
        assert_eq!(head.headers[GRPC_ENCODING], "gzip");
        assert_eq!(message[0], 0);

        let large = vec![b'a'; 4096];
        let (_, message, _) = framed(fast.answer(encoded(&large), Some("gzip")).unwrap());
        assert_eq!(message[0], COMPRESSED);
        let unpacked = fast
            .compression
            .decompress_with_limit("gzip", message.slice(ENVELOPE_HEAD..), 1 << 20)
            .unwrap();
        assert_eq!(unpacked, large);

        // The handler's own word wins over the policy, both ways.
        let mut forced = encoded(b"small");
        forced.compress = Some(true);
        let (_, message, _) = framed(fast.answer(forced, Some("gzip")).unwrap());
        assert_eq!(message[0], COMPRESSED);
        let mut refused = encoded(&large);
        refused.compress = Some(false);
        let (_, message, _) = framed(fast.answer(refused, Some("gzip")).unwrap());
        assert_eq!(message[0], 0);
    }

    #[test]
    fn an_envelope_head_needs_all_five_bytes() {
        assert_eq!(envelope_length(&[0, 0, 0, 1, 0]), Some(256));
        assert_eq!(envelope_length(&[0, 0, 0, 0]), None);
        assert_eq!(envelope_length(&[]), None);
    }
}
