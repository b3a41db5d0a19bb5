//! Bodies with bounds: a request body that fails once its deadline passes (a `Content-Length`
//! larger than what the peer sends cannot hang a handler), and a response body that marks its
//! connection busy until it has been sent in full.

use super::conns::ConnState;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request running on a connection: counted in `in_flight` from the service call until the
/// response body is finished or dropped.
pub(crate) struct InFlight(Arc<ConnState>);

impl InFlight {
    pub fn begin(conn: Arc<ConnState>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set_idle_now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The error a late request body ends with.
#[derive(Debug)]
pub(crate) struct BodyTimeout(Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body not received in full within {:?}", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

pin_project_lite::pin_project! {
    /// `inner`, failing with [`BodyTimeout`] once `timeout` has passed since it was made. A body
    /// that is already at its end (a GET) gets no timer: most requests never touch the clock
    /// or the timer wheel for it.
    pub(crate) struct Deadline<B> {
        #[pin]
        inner: B,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        timeout: Duration,
    }
}

impl<B: Body> Deadline<B> {
    pub fn new(inner: B, timeout: Duration) -> Self {
        let sleep = (!inner.is_end_stream()).then(|| Box::pin(tokio::time::sleep(timeout)));
        Deadline {
            inner,
            sleep,
            timeout,
        }
    }
}

impl<B> Body for Deadline<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(r) = this.inner.poll_frame(cx) {
            return Poll::Ready(r.map(|f| f.map_err(Into::into)));
        }
        match this.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Some(Err(Box::new(BodyTimeout(*this.timeout))))),
            Some(Poll::Pending) | None => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A response body holding its request's [`InFlight`] until it is finished or dropped.
    pub(crate) struct Guarded<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
    }
}

impl<B> Guarded<B> {
    pub fn new(inner: B, guard: InFlight) -> Self {
        Guarded {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: Body> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let r = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = r {
            this.guard.take();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
