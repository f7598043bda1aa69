//! The deadlines of one connection, kept by the gateway
//! rather than by hyper, because hyper's start too late or end too soon:
//! hyper-util's HTTP/1-or-2 detection waits for bytes with no deadline at
//! all (one byte `P` kept a socket open for ever), HTTP/2 has no head
//! deadline, and HTTP/1's header timer also runs while a keep-alive
//! connection is idle, so it cannot be both 10 s and the idle timeout.
//!
//! A [`Tracker`] per connection sees every byte read ([`Watched`]) and
//! every request start and end ([`Tracker::start`]); the connection's task
//! asks it for the next [`Tracker::deadline`]:
//! - until the first request head is whole: `header` from accept, whatever
//!   the protocol, including before it is known;
//! - HTTP/1, once the next request's first byte has come: `header` from it;
//! - no request in flight otherwise: `idle` from the end of the last one.
//!
//! A head deadline drops the connection (nothing was accepted on it yet);
//! an idle one shuts it down gracefully (HTTP/2 says GOAWAY).
//!
//! Bytes read while a request is in flight are not counted as a new head:
//! they are mostly its body. So part of a pipelined HTTP/1 head that came
//! along with the request before it is held to the idle time, not the
//! header time.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expiry {
    /// No whole request head in time: close.
    Head,
    /// No request for the idle time: shut down gracefully.
    Idle,
}

#[derive(PartialEq)]
enum Proto {
    Unknown,
    Http1,
    Http2,
}

pub struct Tracker {
    state: Mutex<State>,
    /// Told when a deadline may have moved earlier.
    pub changed: Notify,
    header: Duration,
    idle: Duration,
}

struct State {
    in_flight: usize,
    /// A request head was whole at least once.
    served: bool,
    /// Accept, or the end of the last request.
    idle_since: Instant,
    /// HTTP/1: the first byte of the next request, while none is in flight.
    head_started: Option<Instant>,
    proto: Proto,
    preface_matched: usize,
}

impl Tracker {
    pub fn new(header: Duration, idle: Duration) -> Arc<Tracker> {
        Arc::new(Tracker {
            state: Mutex::new(State {
                in_flight: 0,
                served: false,
                idle_since: Instant::now(),
                head_started: None,
                proto: Proto::Unknown,
                preface_matched: 0,
            }),
            changed: Notify::new(),
            header,
            idle,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the connection ends if nothing happens before, and how.
    pub fn deadline(&self) -> Option<(Instant, Expiry)> {
        let s = self.lock();
        if s.in_flight > 0 {
            None
        } else if !s.served {
            Some((s.idle_since + self.header, Expiry::Head))
        } else if let (Some(at), false) = (s.head_started, s.proto == Proto::Http2) {
            Some((at + self.header, Expiry::Head))
        } else {
            Some((s.idle_since + self.idle, Expiry::Idle))
        }
    }

    /// No request in flight.
    pub fn idle(&self) -> bool {
        self.lock().in_flight == 0
    }

    /// Bytes just read from the client.
    fn saw(&self, bytes: &[u8]) {
        let mut s = self.lock();
        if s.proto == Proto::Unknown {
            for byte in bytes {
                if *byte != H2_PREFACE[s.preface_matched] {
                    s.proto = Proto::Http1;
                    break;
                }
                s.preface_matched += 1;
                if s.preface_matched == H2_PREFACE.len() {
                    s.proto = Proto::Http2;
                    break;
                }
            }
        }
        if s.in_flight == 0 && s.served && s.head_started.is_none() && s.proto != Proto::Http2 {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// A request head is whole: no deadline until the guard is dropped
    /// (its body has its own, the request its own too).
    pub fn start(self: &Arc<Self>) -> Active {
        let mut s = self.lock();
        s.in_flight += 1;
        s.served = true;
        s.head_started = None;
        Active(self.clone())
    }
}

/// One request in flight; its end starts the idle time.
pub struct Active(Arc<Tracker>);

impl Drop for Active {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            drop(s);
            self.0.changed.notify_one();
        }
    }
}

/// The client's stream, telling its tracker what is read.
pub struct Watched<T> {
    pub io: T,
    pub tracker: Arc<Tracker>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.tracker.saw(&buf.filled()[before..]);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(10);
    const I: Duration = Duration::from_secs(60);

    #[test]
    fn deadlines_follow_the_connection() {
        let t = Tracker::new(H, I);
        let (first, why) = t.deadline().unwrap();
        assert_eq!(why, Expiry::Head, "from accept");
        t.saw(b"P");
        assert_eq!(
            t.deadline(),
            Some((first, Expiry::Head)),
            "one byte changes nothing"
        );
        let active = t.start();
        assert_eq!(t.deadline(), None, "a request in flight");
        drop(active);
        let (idle, why) = t.deadline().unwrap();
        assert!(why == Expiry::Idle && idle >= first + (I - H));
        t.saw(b"GET /");
        let (next, why) = t.deadline().unwrap();
        assert!(why == Expiry::Head && next < idle, "the next head started");
    }

    #[test]
    fn http2_is_idle_between_streams_whatever_it_sends() {
        let t = Tracker::new(H, I);
        t.saw(H2_PREFACE);
        drop(t.start());
        let idle = t.deadline().unwrap();
        t.saw(b"\0\0\0\x06\0\0\0\0\0"); // a PING ack, say
        assert_eq!(t.deadline(), Some(idle));
        assert_eq!(idle.1, Expiry::Idle);
    }
}
