//! The HTTP/1.1 server: actix-http over userd's [`GuardedStream`], running the
//! application of [`crate::app`] on actix's multi-threaded server.

use std::io;
use std::net::TcpListener;
use std::time::Duration;

use actix_http::HttpService;
use actix_http::KeepAlive;
use actix_rt::net::TcpStream;
use actix_service::{ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::{AppConfig, Server};

use crate::connection::GuardedStream;
use crate::routes::Services;

/// How the server treats connections.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Time in-flight requests get after a stop signal.
    pub shutdown_grace: Duration,
    /// A client must send its request head within this time.
    pub client_request_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keep_alive: Duration,
    /// Open connections per worker.
    pub max_connections: usize,
}

/// The server on `listener`, started. When `stop` resolves it stops accepting and lets
/// in-flight requests finish within the grace period; it watches no signal itself, so the
/// caller decides, for every listener at once, what stops the process. Must be called
/// inside an actix system.
pub fn serve(
    services: Services,
    listener: TcpListener,
    settings: &ServerSettings,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<Server> {
    let keep_alive = settings.keep_alive;
    let client_request_timeout = settings.client_request_timeout;
    let mut builder = Server::build()
        .shutdown_timeout(settings.shutdown_grace.as_secs())
        .max_concurrent_connections(settings.max_connections)
        .shutdown_signal(stop);
    if settings.workers > 0 {
        builder = builder.workers(settings.workers);
    }
    // Idle keep-alive connections close at once on a graceful stop, and busy ones after
    // their current request, instead of holding the stop until their keep-alive ends.
    let stopping = builder.graceful_shutdown_signal();
    builder = builder.listen("userd-http", listener, move || {
        let app = crate::app(services.clone());
        let stopping = stopping.clone();
        let http = HttpService::build()
            .graceful_shutdown_signal(move || {
                let stopping = stopping.clone();
                async move { stopping.notified().await }
            })
            .keep_alive(KeepAlive::Timeout(keep_alive))
            .client_request_timeout(client_request_timeout)
            .h1(map_config(app, |_| AppConfig::default()));
        fn_service(|stream: TcpStream| async move {
            let peer = stream.peer_addr().ok();
            Ok::<_, actix_http::error::DispatchError>((GuardedStream::new(stream), peer))
        })
        .and_then(http)
    })?;
    Ok(builder.run())
}

/// A listening socket on `host:port` (port 0 picks a free one), with a listen queue
/// long enough for bursts of new connections.
pub fn listen(host: &str, port: u16) -> io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address to listen on");
    for address in (host, port).to_socket_addrs()? {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(address),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        match socket
            .bind(&address.into())
            .and_then(|()| socket.listen(1024))
        {
            Ok(()) => return Ok(socket.into()),
            Err(error) => last = error,
        }
    }
    Err(last)
}
