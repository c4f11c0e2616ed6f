//! Accepting and serving connections, so that hostile clients cannot wear
//! the server down (axum::serve has no timeouts and no connection cap):
//!
//! - **A cap on open connections** (`max_connections`): a semaphore; while
//!   it is full, new connections wait in the kernel's listen backlog. The
//!   file-descriptor limit is raised to allow the cap, or the cap lowered.
//! - **Header-read timeout**: from a connection's opening (including the
//!   TLS handshake), or from the first byte of its next request, to that
//!   request's complete headers. Half-open and slowloris connections go.
//! - **Idle timeout**: a kept-alive connection with no request in progress
//!   is closed. The clock stops while a handler runs, so a long poll
//!   (`BerthAgentV1.PollWork` holds ~20 s) is never cut. While a stream
//!   (`sse`) is sent, only a write that waits longer than the idle timeout
//!   (a client that stopped reading) closes the connection.
//! - **Body-read timeout**: applied by the handler (`gate::read_body`).
//! - At most 64 KiB of buffered headers per connection (hyper's default
//!   is ~400 KiB), so a thousand slow header senders cost 64 MiB at most.
//! - A connection the server closes while the client may still be sending
//!   (an early refusal does not read the body) is half-closed and drained
//!   for up to two seconds, so that the client reads its answer instead of
//!   a reset.

use crate::config::HttpOptions;
use crate::http::AppState;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Largest buffer hyper keeps for one connection's request head.
const MAX_HEAD_BUFFER: usize = 64 * 1024;
/// How long a closing connection is drained of what its client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// ...and how much of it at most.
const LINGER_BYTES: usize = 16 * 1024 * 1024;
/// How long shutdown waits for requests in progress.
const DRAIN: Duration = Duration::from_secs(5);
/// File descriptors kept for the store, the runtime and the rest.
const RESERVED_FDS: u64 = 256;

/// Serves `listener` until `shutdown` completes, then lets requests in
/// progress finish (for up to five seconds).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    options: HttpOptions,
    shutdown: impl Future<Output = ()>,
) {
    let max = allowed_connections(options.max_connections);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = Arc::new(options);
    let mut last_full_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                if last_full_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(max, "connection limit reached; new connections wait");
                    last_full_warning = Some(Instant::now());
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
                }
            }
        };
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors or memory: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            tls.clone(),
            state.clone(),
            options.clone(),
            stop_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is done: all slots back means all done.
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(max as u32)).await;
}

/// The cap on connections, within the file descriptors the process may
/// open: the soft limit is raised to the hard one where needed (as Go's
/// runtime does), else the cap is lowered to fit.
fn allowed_connections(wanted: usize) -> usize {
    let wanted = wanted.clamp(1, u32::MAX as usize);
    #[cfg(unix)]
    {
        let need = wanted as u64 + RESERVED_FDS;
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return wanted;
        }
        let infinite = lim.rlim_cur == libc::RLIM_INFINITY;
        if !infinite && fds(lim.rlim_cur) < need {
            let raised = if lim.rlim_max == libc::RLIM_INFINITY {
                need
            } else {
                need.min(fds(lim.rlim_max))
            };
            let new = libc::rlimit {
                rlim_cur: raised as libc::rlim_t,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
                lim.rlim_cur = new.rlim_cur;
            }
            if fds(lim.rlim_cur) < need {
                let fit = fds(lim.rlim_cur).saturating_sub(RESERVED_FDS).max(16) as usize;
                tracing::warn!(
                    wanted,
                    allowed = fit,
                    open_files = fds(lim.rlim_cur),
                    "the open-file limit allows fewer connections than asked; raise it (ulimit -n)"
                );
                return fit.min(wanted);
            }
        }
    }
    wanted
}

/// `rlim_t` is u64 on Linux, but not on every Unix.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
fn fds(v: libc::rlim_t) -> u64 {
    v as u64
}

async fn connection(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    options: Arc<HttpOptions>,
    stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let clock = Arc::new(ConnClock::new());
    match tls {
        None => drive(stream, state, options, clock, stop).await,
        Some(acceptor) => {
            let handshake = acceptor.accept(stream);
            match tokio::time::timeout(options.header_read_timeout, handshake).await {
                Ok(Ok(s)) => drive(s, state, options, clock, stop).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

type BoxedResponse = Pin<
    Box<dyn Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send>,
>;

async fn drive<S>(
    io: S,
    state: Arc<AppState>,
    options: Arc<HttpOptions>,
    clock: Arc<ConnClock>,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watched = Watched::new(io, clock.clone(), &options);
    let for_service = clock.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (state, clock) = (state.clone(), for_service.clone());
        Box::pin(async move {
            clock.set(Phase::Busy);
            let response = crate::http::serve_request(state, req.map(axum::body::Body::new)).await;
            if response
                .extensions()
                .get::<crate::sse::Streaming>()
                .is_some()
            {
                clock.set(Phase::Stream);
                return Ok(idle_when_done(response, clock));
            }
            // Writing the answer counts as idle time: a client that does
            // not read it is dropped like one that sends nothing.
            clock.set(Phase::Idle);
            Ok(response)
        }) as BoxedResponse
    });
    let mut conn = http1::Builder::new()
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BUFFER)
        .serve_connection(TokioIo::new(watched), service);
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            r = futures::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    match result {
        // Only a connection that answered a request may have a client still
        // sending to it; one dropped for a timeout gets no more time.
        Ok(()) if clock.served() && !clock.timed_out() => {
            let io = conn.into_parts().io.into_inner().inner;
            linger(io).await;
        }
        Ok(()) => {}
        Err(e) => tracing::debug!(error = %e, "connection closed"),
    }
}

/// A streamed answer whose connection turns idle when its body is done
/// (or dropped), so the next request on it has its usual timeouts.
fn idle_when_done(
    response: axum::response::Response,
    clock: Arc<ConnClock>,
) -> axum::response::Response {
    struct IdleOnDrop(Arc<ConnClock>);
    impl Drop for IdleOnDrop {
        fn drop(&mut self) {
            self.0.set(Phase::Idle);
        }
    }
    let guard = IdleOnDrop(clock);
    response.map(|body| {
        axum::body::Body::from_stream(futures::StreamExt::map(body.into_data_stream(), move |c| {
            let _held = &guard;
            c
        }))
    })
}

/// Closes our side, then reads and drops what the client still sends, so
/// that it reads our answer rather than a reset.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let deadline = tokio::time::Instant::now() + LINGER;
    if tokio::time::timeout_at(deadline, io.shutdown())
        .await
        .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// What a connection is doing, for its timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests: the idle timeout runs.
    Idle = 0,
    /// Opened, or a request's first bytes came: the header timeout runs.
    Head = 1,
    /// A handler runs: no timeout here (the handler has its own).
    Busy = 2,
    /// A stream is being sent: a write may not wait past the idle timeout.
    Stream = 3,
}

/// A connection's phase and since when, in one atomic: the phase in the
/// low two bits, milliseconds since the connection opened above them.
struct ConnClock {
    origin: Instant,
    state: AtomicU64,
    /// A request was answered on this connection.
    served: AtomicBool,
    /// The connection was dropped for a timeout.
    timed_out: AtomicBool,
}

impl ConnClock {
    fn new() -> ConnClock {
        ConnClock {
            origin: Instant::now(),
            state: AtomicU64::new(Phase::Head as u64),
            served: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
        }
    }

    fn served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Acquire)
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn set(&self, phase: Phase) {
        if phase == Phase::Idle {
            self.served.store(true, Ordering::Release);
        }
        self.state
            .store(self.now_ms() << 2 | phase as u64, Ordering::Release);
    }

    fn get(&self) -> (Phase, Instant) {
        let s = self.state.load(Ordering::Acquire);
        let phase = match s & 3 {
            0 => Phase::Idle,
            1 => Phase::Head,
            2 => Phase::Busy,
            _ => Phase::Stream,
        };
        (phase, self.origin + Duration::from_millis(s >> 2))
    }

    /// Bytes came in: an idle connection starts a request.
    fn bytes_in(&self) {
        let s = self.state.load(Ordering::Acquire);
        if s & 3 == Phase::Idle as u64 {
            let head = self.now_ms() << 2 | Phase::Head as u64;
            let _ = self
                .state
                .compare_exchange(s, head, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

/// The connection's stream, with its timeouts: when a read or write has to
/// wait past the deadline of the connection's phase, it fails (TimedOut),
/// and hyper closes the connection.
struct Watched<S> {
    inner: S,
    clock: Arc<ConnClock>,
    header_timeout: Duration,
    idle_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
    /// Since when a write waits for the client to read.
    write_blocked: Option<Instant>,
}

impl<S> Watched<S> {
    fn new(inner: S, clock: Arc<ConnClock>, options: &HttpOptions) -> Watched<S> {
        Watched {
            inner,
            clock,
            header_timeout: options.header_read_timeout,
            idle_timeout: options.idle_timeout,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            write_blocked: None,
        }
    }

    /// Err once the phase's deadline has passed; otherwise makes sure the
    /// task is woken at the deadline.
    fn check_deadline(&mut self, cx: &mut Context<'_>, writing: bool) -> io::Result<()> {
        let (phase, since) = self.clock.get();
        let (deadline, what) = match phase {
            Phase::Busy => return Ok(()),
            Phase::Stream if !writing => return Ok(()),
            Phase::Stream => {
                let blocked = *self.write_blocked.get_or_insert_with(Instant::now);
                (blocked + self.idle_timeout, "stream write timeout")
            }
            Phase::Idle => (since + self.idle_timeout, "idle timeout"),
            Phase::Head => (since + self.header_timeout, "header read timeout"),
        };
        if self.armed != Some(deadline) {
            self.sleep.as_mut().reset(deadline.into());
            self.armed = Some(deadline);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.clock.timed_out.store(true, Ordering::Release);
                Err(io::Error::new(io::ErrorKind::TimedOut, what))
            }
            Poll::Pending => Ok(()),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_in();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.check_deadline(cx, false) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => match this.check_deadline(cx, true) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => {
                this.write_blocked = None;
                other
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => match this.check_deadline(cx, true) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => {
                this.write_blocked = None;
                other
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => match this.check_deadline(cx, true) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => {
                this.write_blocked = None;
                other
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_phases() {
        let c = ConnClock::new();
        assert_eq!(c.get().0, Phase::Head);
        c.set(Phase::Idle);
        assert_eq!(c.get().0, Phase::Idle);
        c.bytes_in();
        assert_eq!(c.get().0, Phase::Head);
        c.set(Phase::Busy);
        c.bytes_in();
        assert_eq!(
            c.get().0,
            Phase::Busy,
            "bytes during a request change nothing"
        );
    }

    #[tokio::test]
    async fn an_idle_stream_times_out_and_a_busy_one_does_not() {
        let options = HttpOptions {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(200),
            ..HttpOptions::default()
        };
        let (a, _b) = tokio::io::duplex(64);
        let clock = Arc::new(ConnClock::new());
        let mut w = Watched::new(a, clock.clone(), &options);
        let mut buf = [0u8; 8];
        let t = Instant::now();
        let e = w.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(100));

        clock.set(Phase::Busy);
        let r = tokio::time::timeout(Duration::from_millis(400), w.read(&mut buf)).await;
        assert!(r.is_err(), "a busy connection waits as long as it must");

        clock.set(Phase::Stream);
        let r = tokio::time::timeout(Duration::from_millis(400), w.read(&mut buf)).await;
        assert!(r.is_err(), "a stream's client need not send anything");
        w.write_all(&[0; 64]).await.unwrap();
        let t = Instant::now();
        let e = w.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "nor may it stop reading");
        assert!(t.elapsed() >= Duration::from_millis(150));

        clock.set(Phase::Idle);
        let t = Instant::now();
        let e = w.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
    }
}
