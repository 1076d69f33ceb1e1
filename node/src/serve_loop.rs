//! The connection loop of the node's HTTP servers (webhook, query, metrics).
//!
//! It does what `axum::serve` does (accept, serve each connection over HTTP/1.1 or
//! HTTP/2 with the peer's address as `ConnectInfo`, finish open connections on
//! shutdown) with one difference: hyper's per-connection read buffer is capped at
//! [`READ_BUFFER_BYTES`]. axum's loop leaves hyper's default (about 400 KiB), and a
//! connection streaming webhook bodies grows its buffer towards it: 400 API-server
//! connections under overload held about 50 MiB more than 100 did.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use tower::ServiceExt;

/// Largest read buffer of one HTTP/1 connection. Bodies arrive in frames of at most
/// this size; larger reads only save system calls. An idle connection keeps the
/// buffer it grew: under the overload bench (400 connections) 16 KiB peaked at
/// 233-237 MiB RSS where 64 KiB reached 267 MiB, acknowledging as much (8,018-9,568
/// events/s against 8,674).
pub const READ_BUFFER_BYTES: usize = 16 << 10;

/// Serves `app` on `listener` until `stop` completes, then waits for the requests in
/// progress to finish (open connections are closed once idle).
pub async fn serve<L>(mut listener: L, app: Router, stop: impl Future<Output = ()>)
where
    L: Listener<Addr = SocketAddr>,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(READ_BUFFER_BYTES);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
