//! The HTTP server: hyper-util's auto builder (HTTP/1.1 with keep-alive,
//! and HTTP/2 for clients that speak it), with limits on what a client may
//! send and how long it may take, a cap on connections, and a graceful
//! shutdown.
//!
//! At most `GATEWAY_MAX_CONNECTIONS` are open: at the cap the gateway stops
//! accepting until one closes (new ones wait in the kernel's backlog). Each
//! connection's head and idle deadlines are kept by [`crate::conn`].
//!
//! With HTTPS ([`crate::tls`]) the TLS handshake runs in the connection's
//! own task, after the connection took its slot and within its head
//! deadline: a client that stalls its handshake is closed like one that
//! stalls its head. [`Watched`] sees the decrypted bytes, so the deadlines
//! are the same as over plain TCP.
//!
//! On the shutdown signal the listener closes first (new connections are
//! refused), then every open connection is told to finish: an HTTP/1.1
//! connection answers the request it is working on and closes, an idle one
//! closes at once, HTTP/2 sends GOAWAY and finishes its streams. Only when
//! all are done, or after [`Gateway::deadline`] plus a margin, does `serve`
//! return, so every request that was accepted gets its answer.

use crate::conn::{Expiry, Tracker, Watched};
use crate::Gateway;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Request line plus headers, at most (HTTP/1.1: 431 beyond it).
pub const MAX_HEAD: usize = 16 * 1024;
/// Header fields in one request, at most.
pub const MAX_HEADERS: usize = 64;
/// Concurrent HTTP/2 streams on one connection.
pub const MAX_STREAMS: u32 = 256;

pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // conn.rs keeps the head deadline: hyper's would also cut idle
        // keep-alive connections short.
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEAD as u32)
        .keep_alive_interval(Duration::from_secs(20));
    let builder = Arc::new(builder);

    let max = gateway.settings.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    let mut warned: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        if slots.available_permits() == 0
            && warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10))
        {
            tracing::warn!(
                max,
                "GATEWAY_MAX_CONNECTIONS reached: not accepting until one closes"
            );
            warned = Some(Instant::now());
        }
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        connection(
            &builder,
            stream,
            peer,
            gateway.clone(),
            permit,
            stopping.clone(),
        );
    }
    drop(listener);
    let open = max - slots.available_permits();
    tracing::info!(
        open_connections = open,
        "shutting down: finishing in-flight requests"
    );
    let _ = stop.send(true);
    let grace = gateway.deadline() + Duration::from_secs(1);
    if tokio::time::timeout(grace, slots.acquire_many(max as u32))
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
}

/// Serves one connection in its own task until it ends, its deadline
/// passes, or the server stops; with HTTPS, after its TLS handshake.
fn connection(
    builder: &Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    gateway: Arc<Gateway>,
    permit: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    // The head deadline runs from here, the accept.
    let tracker = Tracker::new(
        gateway.settings.header_timeout,
        gateway.settings.idle_timeout,
    );
    let builder = builder.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let Some(acceptor) = gateway.settings.tls.clone() else {
            return serve_connection(&builder, stream, peer, gateway, tracker, stopping).await;
        };
        let Some((deadline, _)) = tracker.deadline() else {
            return;
        };
        tokio::select! {
            shaken = tokio::time::timeout_at(deadline, acceptor.accept(stream)) => match shaken {
                Ok(Ok(tls)) => serve_connection(&builder, tls, peer, gateway, tracker, stopping).await,
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "closed: no TLS handshake in time"),
            },
            // Nothing was accepted on it yet: just close.
            _ = stopping.changed() => {}
        }
    });
}

/// One connection's HTTP, over TCP or TLS, under its deadlines.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    peer: SocketAddr,
    gateway: Arc<Gateway>,
    tracker: Arc<Tracker>,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = gateway.settings.header_timeout;
    let service = {
        let tracker = tracker.clone();
        service_fn(move |request| {
            let active = tracker.start();
            let gateway = gateway.clone();
            async move {
                let response = gateway.handle(request, peer).await;
                drop(active);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let io = TokioIo::new(Watched {
        io,
        tracker: tracker.clone(),
    });
    let connection = builder.serve_connection(io, service).into_owned();
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    // When an idle shutdown began: HTTP/2's GOAWAY waits for the
    // client's PING ack, and a client that never sends it must not
    // keep the connection; one header timeout is its grace.
    let mut idle_since: Option<Instant> = None;
    loop {
        let deadline = match (closing, idle_since) {
            (false, _) => tracker.deadline(),
            (true, Some(since)) if tracker.idle() => Some((since + header_timeout, Expiry::Head)),
            (true, _) => None,
        };
        let changed = tracker.changed.notified();
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(err) = ended {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            _ = stopping.changed(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = changed => {}
            _ = expired => match deadline {
                // Re-checked: a request may have started meanwhile.
                Some((_, Expiry::Head)) if closing && tracker.idle() => {
                    tracing::debug!(%peer, "closed: the client did not finish closing");
                    return;
                }
                _ if closing => {}
                _ => match tracker.deadline() {
                    Some((at, Expiry::Head)) if at <= Instant::now() => {
                        tracing::debug!(%peer, "closed: no whole request head in time");
                        return;
                    }
                    Some((at, Expiry::Idle)) if at <= Instant::now() => {
                        tracing::debug!(%peer, "closing: idle");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        idle_since = Some(Instant::now());
                    }
                    _ => {}
                },
            },
        }
    }
}
