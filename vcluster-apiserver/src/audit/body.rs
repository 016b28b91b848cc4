//! Bodies that let the audit log see what passes without holding it up:
//! [`TeeBody`] copies up to a cap of what flows through (request objects,
//! small responses), [`Watched`] calls back once when a response ends
//! (its last frame, an error, or the client going away), so a watch is
//! streamed as before and its `ResponseComplete` written when it ends.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};

/// What a [`TeeBody`] copied.
#[derive(Debug, Default)]
pub struct Captured {
    /// The bytes, at most the cap.
    pub bytes: Vec<u8>,
    /// More than the cap went through: `bytes` is incomplete.
    pub overflow: bool,
}

/// A shared handle on what a [`TeeBody`] copies.
pub type Capture = Arc<Mutex<Captured>>;

/// Passes `inner` through unchanged, copying at most `cap` bytes.
pub struct TeeBody {
    inner: Body,
    capture: Capture,
    cap: usize,
}

impl TeeBody {
    /// Wraps `inner`; returns the body and the handle on its copy.
    pub fn wrap(inner: Body, cap: usize) -> (Body, Capture) {
        let capture = Capture::default();
        let body = TeeBody {
            inner,
            capture: capture.clone(),
            cap,
        };
        (Body::new(body), capture)
    }
}

impl HttpBody for TeeBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let cap = self.cap;
                if let Ok(mut captured) = self.capture.lock() {
                    if !captured.overflow && captured.bytes.len() + data.len() <= cap {
                        captured.bytes.extend_from_slice(data);
                    } else {
                        captured.overflow = true;
                        captured.bytes = Vec::new();
                    }
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Calls `done` once, when the body has ended or is dropped.
pub struct Watched<F: FnOnce() + Send + 'static> {
    inner: Body,
    done: Option<F>,
}

impl<F: FnOnce() + Send + 'static> Watched<F> {
    /// Wraps `inner`.
    pub fn wrap(inner: Body, done: F) -> Body {
        Body::new(Watched {
            inner,
            done: Some(done),
        })
    }

    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done();
        }
    }
}

impl<F: FnOnce() + Send + 'static> Unpin for Watched<F> {}

impl<F: FnOnce() + Send + 'static> HttpBody for Watched<F> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = matches!(&polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
            || (matches!(&polled, Poll::Ready(Some(Ok(_)))) && self.inner.is_end_stream());
        if ended {
            self.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<F: FnOnce() + Send + 'static> Drop for Watched<F> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn the_tee_copies_up_to_its_cap_and_passes_everything() {
        let (body, capture) = TeeBody::wrap(Body::from("hello"), 5);
        assert_eq!(body.collect().await.expect("read").to_bytes(), "hello");
        assert_eq!(capture.lock().expect("lock").bytes, b"hello");
        let (body, capture) = TeeBody::wrap(Body::from("hello!"), 5);
        assert_eq!(body.collect().await.expect("read").to_bytes(), "hello!");
        let captured = capture.lock().expect("lock");
        assert!(captured.overflow && captured.bytes.is_empty());
    }

    #[tokio::test]
    async fn watched_bodies_call_back_once_at_the_end_or_when_dropped() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let body = Watched::wrap(Body::from("x"), move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(body.collect().await.expect("read").to_bytes(), "x");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let counter = calls.clone();
        let body = Watched::wrap(Body::from("never read"), move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        drop(body);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
