//! The RPC listener: one port for gRPC (HTTP/2 cleartext), gRPC-web and Connect, with
//! `grpc.health.v1.Health` and server reflection beside ZITADEL's services.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as AutoBuilder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, mpsc};
use tower::Service;

use connectrpc::{ConnectError, Router};
use connectrpc_health::{Checker, HealthService, Status};
use connectrpc_reflection::Reflector;
use userd_ports::contact::ContactService;
use userd_ports::login::LoginService;
use userd_ports::service::UserService;

use crate::grpc_unary::{AnswerBody, GrpcUnary, Served};
use crate::idle::Activity;
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

/// How long a new connection may take to send its first request's head (HTTP/1.1) or
/// the HTTP/2 preface, before it is closed: a client that connects and stays silent must
/// not hold a connection forever.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection handed to an RPC worker, and the count of that worker's open ones.
pub struct Handover {
    stream: std::net::TcpStream,
    open: OpenConnection,
}

/// One RPC worker's end of the hand-over: the connections the acceptor gives it.
pub struct WorkerInbox {
    incoming: mpsc::UnboundedReceiver<Handover>,
    idle_timeout: Duration,
}

/// What bounds the RPC port's connections, as on the HTTP port.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once per worker (`server.max_connections`); more wait in the
    /// listen queue.
    pub per_worker: usize,
    /// A connection that has carried no call for this long is closed
    /// (`server.keep_alive_secs`): HTTP/2 with a GOAWAY, HTTP/1.1 between requests.
    pub idle_timeout: Duration,
}

/// The acceptor's end: one sender per worker, with its count of open connections.
pub struct Workers {
    workers: Vec<(mpsc::UnboundedSender<Handover>, Arc<AtomicUsize>)>,
    next: usize,
    most_open_each: usize,
    /// Told whenever a connection ends, so that an acceptor waiting for room wakes.
    closed: Arc<Notify>,
}

/// The hand-over between one acceptor and `count` workers, within `limits`.
pub fn workers(count: usize, limits: ConnectionLimits) -> (Workers, Vec<WorkerInbox>) {
    let (mut senders, mut inboxes) = (Vec::new(), Vec::new());
    for _ in 0..count.max(1) {
        let (sender, incoming) = mpsc::unbounded_channel();
        senders.push((sender, Arc::new(AtomicUsize::new(0))));
        inboxes.push(WorkerInbox {
            incoming,
            idle_timeout: limits.idle_timeout,
        });
    }
    (
        Workers {
            workers: senders,
            next: 0,
            most_open_each: limits.per_worker.max(1),
            closed: Arc::new(Notify::new()),
        },
        inboxes,
    )
}

impl Workers {
    fn all_full(&self) -> bool {
        self.workers
            .iter()
            .all(|(_, open)| open.load(Ordering::Relaxed) >= self.most_open_each)
    }

    /// Gives a connection to the worker with the fewest open ones (in turn among equals):
    /// workers accepting from a shared socket themselves take connections as they race
    /// for them, and one thread may end up carrying every client while the others idle.
    fn hand_over(&mut self, stream: std::net::TcpStream) -> std::io::Result<()> {
        let count = self.workers.len();
        let chosen = (0..count)
            .map(|offset| (self.next + offset) % count)
            .min_by_key(|&index| self.workers[index].1.load(Ordering::Relaxed))
            .ok_or_else(|| std::io::Error::other("no RPC workers"))?;
        self.next = (chosen + 1) % count;
        let (sender, open) = &self.workers[chosen];
        open.fetch_add(1, Ordering::Relaxed);
        sender
            .send(Handover {
                stream,
                open: OpenConnection {
                    open: Arc::clone(open),
                    closed: Arc::clone(&self.closed),
                },
            })
            .map_err(|_| std::io::Error::other("an RPC worker has stopped"))
    }
}

/// Accepts connections until `shutdown` completes, handing each to a worker.
pub async fn accept(
    listener: tokio::net::TcpListener,
    mut workers: Workers,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        while workers.all_full() {
            let closed = Arc::clone(&workers.closed);
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                () = closed.notified() => {}
            }
        }
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                // Small frames both ways: Nagle's delay would hold HTTP/2's control
                // frames and short answers back for a round trip.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "could not set TCP_NODELAY on an RPC connection");
                }
                // Leaving this runtime's reactor can fail for this one socket only;
                // the listener goes on.
                match stream.into_std() {
                    Ok(stream) => workers.hand_over(stream)?,
                    Err(error) => tracing::warn!(%error, "an RPC connection was dropped"),
                }
            }
            // Out of file descriptors, or a connection reset before it was accepted:
            // the listener itself is fine; pausing lets descriptors free up.
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, "RPC listener could not accept a connection; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || error.raw_os_error().is_some_and(|code| {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM
        matches!(code, 24 | 23 | 105 | 12)
    })
}

/// Serves the connections handed to one worker, on the runtime it is called on, until
/// `shutdown` completes; then asks every connection to finish (HTTP/2 GOAWAY, HTTP/1.1
/// close after the answer in progress) and waits for the calls in flight. A connection
/// idle for the inbox's idle timeout is asked to finish the same way.
pub async fn serve_connections(
    services: RpcServer,
    inbox: WorkerInbox,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Connections and their HTTP/2 streams are tasks of one LocalSet, as actix-web's
    // workers run theirs. A database call finishing on the blocking pool wakes its task
    // from another thread; tokio's scheduler pays a write to the runtime's eventfd for
    // every such wake-up, while a LocalSet already woken takes further ones for free.
    // In the gRPC flow that was 1.7 wake-up writes per RPC against REST's 0.4 (strace).
    tokio::task::LocalSet::new()
        .run_until(serve_on_this_thread(services, inbox, shutdown))
        .await
}

async fn serve_on_this_thread(
    services: RpcServer,
    mut inbox: WorkerInbox,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = Arc::new(router(&services).map_err(std::io::Error::other)?);
    let observe = Arc::new(Observe {
        metrics: services.metrics,
    });
    let service = RpcDoor(Arc::new(Doors {
        unary: GrpcUnary::new(Arc::clone(&router), Arc::clone(&observe)),
        connect: connectrpc::ConnectRpcService::from_arc(router).with_interceptor_arc(observe),
    }));
    let mut builder = AutoBuilder::new(LocalExecutor);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(FIRST_REQUEST_TIMEOUT);
    // userd's messages are a few hundred bytes: hyper's default 64 KiB windows never
    // fill, and the adaptive window would cost a PING round trip on the connection for
    // every request body it samples.
    builder
        .http2()
        .adaptive_window(false)
        .auto_date_header(false);
    let (stop_connections, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let handover = tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Ended connections are reaped as they end: the set holds the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            handover = inbox.incoming.recv() => match handover {
                Some(handover) => handover,
                None => break,
            },
        };
        let Handover { stream, open } = handover;
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "an RPC connection could not join its worker");
                continue;
            }
        };
        let activity = Activity::new();
        let per_request = {
            let (service, activity) = (service.clone(), Arc::clone(&activity));
            hyper::service::service_fn(move |request| {
                let call = activity.open_call();
                let mut service = service.clone();
                async move {
                    let answer = service.call(request).await;
                    // The call stays open until its answer's body is sent or dropped.
                    answer.map(|answer| {
                        answer.map(|body| {
                            body.map_frame(move |frame| {
                                let _still_open = &call;
                                frame
                            })
                        })
                    })
                }
            })
        };
        let io = TokioIo::new(FirstBytesDeadline::new(stream, FIRST_REQUEST_TIMEOUT));
        let connection = builder.serve_connection(io, per_request).into_owned();
        let (idle_timeout, mut stopping) = (inbox.idle_timeout, stopping.clone());
        connections.spawn_local(async move {
            let _open = open;
            let mut connection = std::pin::pin!(connection);
            // Idle for too long, or the worker stopping (an error: the worker is gone,
            // which only happens once it stops).
            let mut time_to_finish = std::pin::pin!(async {
                tokio::select! {
                    () = activity.idle_for(idle_timeout) => {}
                    _ = stopping.wait_for(|stop| *stop) => {}
                }
            });
            let mut finishing = false;
            loop {
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(error) = ended {
                            tracing::debug!(error = %error, "RPC connection ended with an error");
                        }
                        break;
                    }
                    () = time_to_finish.as_mut(), if !finishing => {
                        connection.as_mut().graceful_shutdown();
                        finishing = true;
                    }
                }
            }
        });
    }
    // Every open connection finishes its calls in flight and closes; wait for them all.
    stop_connections.send_replace(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Every request of the RPC port: a unary gRPC call in its common shape is served
/// straight from the router (see [`GrpcUnary`]), anything else by connectrpc.
#[derive(Clone)]
struct RpcDoor(Arc<Doors>);

struct Doors {
    unary: GrpcUnary,
    connect: connectrpc::ConnectRpcService,
}

impl Service<http::Request<hyper::body::Incoming>> for RpcDoor {
    type Response = http::Response<AnswerBody>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        let doors = Arc::clone(&self.0);
        let serving = async move {
            match doors.unary.serve(request).await {
                Served::Answered(answer) => answer,
                Served::NotMine(request) => {
                    let Ok(answer) = doors.connect.clone().call(request).await;
                    answer.map(AnswerBody::Connect)
                }
            }
        };
        Box::pin(async move { Ok(even_if_it_panics(serving).await) })
    }
}

/// Runs hyper's per-stream tasks on the worker's LocalSet, beside their connection.
#[derive(Clone, Copy)]
struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

/// Counts a worker's connection as open until it ends.
struct OpenConnection {
    open: Arc<AtomicUsize>,
    closed: Arc<Notify>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        // A stored permit if the acceptor is not waiting yet: it then finds room at once.
        self.closed.notify_one();
    }
}

/// A call whose handler panicked answers `internal` instead of dropping the stream.
async fn even_if_it_panics(
    serving: impl Future<Output = http::Response<AnswerBody>>,
) -> http::Response<AnswerBody> {
    AssertUnwindSafe(serving)
        .catch_unwind()
        .await
        .unwrap_or_else(answer_panic)
}

/// What a call whose handler panicked answers.
fn answer_panic(panic: Box<dyn std::any::Any + Send>) -> http::Response<AnswerBody> {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %detail, "an RPC handler panicked");
    let mut answer = http::Response::new(AnswerBody::Buffered {
        data: Some(ConnectError::internal("internal error").to_json()),
        trailers: None,
    });
    *answer.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    answer
}

/// A connection's reads fail once `deadline` passes before the client has chosen its
/// protocol (HTTP/1.1, or HTTP/2's 24-byte preface). hyper's header timeout covers
/// HTTP/1.1 once chosen; before that, hyper-util's protocol detection waits without one.
struct FirstBytesDeadline {
    stream: tokio::net::TcpStream,
    detecting: Option<Detecting>,
}

struct Detecting {
    preface_seen: usize,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl FirstBytesDeadline {
    fn new(stream: tokio::net::TcpStream, within: Duration) -> Self {
        FirstBytesDeadline {
            stream,
            detecting: Some(Detecting {
                preface_seen: 0,
                deadline: Box::pin(tokio::time::sleep(within)),
            }),
        }
    }
}

impl Detecting {
    /// Whether the protocol is now decided by what was read: an HTTP/2 preface in
    /// full, anything that is not one, or the client closing.
    fn decided_by(&mut self, read: &[u8]) -> bool {
        let rest = &HTTP2_PREFACE[self.preface_seen..];
        if read.is_empty() || read.len() >= rest.len() || !rest.starts_with(read) {
            return true;
        }
        self.preface_seen += read.len();
        false
    }
}

impl AsyncRead for FirstBytesDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        let Some(detecting) = &mut this.detecting else {
            return read;
        };
        match read {
            Poll::Ready(Ok(())) => {
                if detecting.decided_by(&buf.filled()[before..]) {
                    this.detecting = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match detecting.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client sent no request in time",
                ))),
                Poll::Pending => Poll::Pending,
            },
            failed @ Poll::Ready(Err(_)) => failed,
        }
    }
}

impl AsyncWrite for FirstBytesDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(per_worker: usize) -> ConnectionLimits {
        ConnectionLimits {
            per_worker,
            idle_timeout: Duration::from_secs(5),
        }
    }

    /// A connected pair of loopback sockets: the server's end and the client's.
    async fn connected() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    fn received(inboxes: &mut [WorkerInbox]) -> Vec<Vec<Handover>> {
        inboxes
            .iter_mut()
            .map(|inbox| std::iter::from_fn(|| inbox.incoming.try_recv().ok()).collect::<Vec<_>>())
            .collect()
    }

    #[tokio::test]
    async fn connections_go_to_the_worker_with_the_fewest_open() {
        let (mut workers, mut inboxes) = workers(2, limits(100));
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (server, client) = connected().await;
            workers.hand_over(server.into_std().unwrap()).unwrap();
            clients.push(client);
        }
        let mut given = received(&mut inboxes);
        assert_eq!(given.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);

        // Worker 0's two connections end; the next two both go to it.
        for handover in given[0].drain(..) {
            drop(handover.open);
        }
        for _ in 0..2 {
            let (server, client) = connected().await;
            workers.hand_over(server.into_std().unwrap()).unwrap();
            clients.push(client);
        }
        let given = received(&mut inboxes);
        assert_eq!(given.iter().map(Vec::len).collect::<Vec<_>>(), [2, 0]);
    }

    #[tokio::test]
    async fn a_stopped_worker_is_an_error_for_the_acceptor() {
        let (mut workers, inboxes) = workers(1, limits(100));
        drop(inboxes);
        let (server, _client) = connected().await;
        assert!(workers.hand_over(server.into_std().unwrap()).is_err());
    }

    #[tokio::test]
    async fn the_acceptor_waits_while_every_worker_is_full() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (workers, mut inboxes) = workers(1, limits(1));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let acceptor = tokio::spawn(accept(listener, workers, async {
            let _ = stopped.await;
        }));
        let _first = tokio::net::TcpStream::connect(address).await.unwrap();
        let _second = tokio::net::TcpStream::connect(address).await.unwrap();
        let first = inboxes[0].incoming.recv().await.unwrap();
        // The second connection waits in the listen queue until the first one ends. The
        // acceptor is on this thread: yielding lets it run as far as it can.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(inboxes[0].incoming.try_recv().is_err());
        drop(first);
        let second = inboxes[0].incoming.recv().await.unwrap();
        drop(second);
        stop.send(()).unwrap();
        acceptor.await.unwrap().unwrap();
    }

    #[tokio::test]
    #[allow(clippy::panic)]
    async fn a_panicking_call_answers_internal() {
        use http_body_util::BodyExt;
        let answer = even_if_it_panics(async { panic!("a handler bug") }).await;
        assert_eq!(answer.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            answer.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["code"], "internal");
    }

    #[test]
    fn the_protocol_is_decided_by_a_whole_preface_or_anything_else() {
        let detecting = || Detecting {
            preface_seen: 0,
            deadline: Box::pin(tokio::time::sleep(Duration::ZERO)),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut split = detecting();
            assert!(!split.decided_by(&HTTP2_PREFACE[..10]));
            assert!(split.decided_by(&HTTP2_PREFACE[10..]));
            assert!(detecting().decided_by(b"POST /zitadel.user.v2"));
            assert!(detecting().decided_by(b""));
            assert!(detecting().decided_by(HTTP2_PREFACE));
            let mut wrong_after_a_start = detecting();
            assert!(!wrong_after_a_start.decided_by(b"PRI * "));
            assert!(wrong_after_a_start.decided_by(b"GET"));
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_fails_its_read_at_the_deadline() {
        let (server, _client) = connected().await;
        let mut guarded = FirstBytesDeadline::new(server, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let mut buffer = [0_u8; 16];
        let error = guarded.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn once_the_protocol_is_chosen_reads_wait_without_a_deadline() {
        let (server, mut client) = connected().await;
        let mut guarded = FirstBytesDeadline::new(server, Duration::from_secs(30));
        client
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        let mut buffer = [0_u8; 64];
        let read = guarded.read(&mut buffer).await.unwrap();
        assert!(read > 0);
        assert!(guarded.detecting.is_none());
        // Past the deadline, an idle HTTP/2 connection (or hyper's own header timeout
        // for HTTP/1.1) is none of this wrapper's business any more.
        tokio::time::advance(Duration::from_secs(60)).await;
        client.write_all(b"Host: x\r\n").await.unwrap();
        let read = guarded.read(&mut buffer).await.unwrap();
        assert_eq!(&buffer[..read], b"Host: x\r\n");
    }
}
