//! Telling a reused pooled connection from a fresh one, for the one failure
//! that is nobody's fault: the server closed an idle keep-alive connection
//! just as trawl sent a request on it. curl sends such a request again on a
//! fresh connection without counting it; so does trawl, for requests that may
//! be repeated.
//!
//! reqwest says nothing of reuse, so a connector layer marks, in a task-local
//! flag, every connection the request's own future opens. A send that opened
//! none went out on a connection from the pool.

use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll};

tokio::task_local! {
    /// Set when the send in scope opened a connection.
    static CONNECTED: Cell<bool>;
}

/// The connector layer that marks connections opened ([`watching`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MarkConnects;

impl<S> tower_layer::Layer<S> for MarkConnects {
    type Service = Marked<S>;

    fn layer(&self, inner: S) -> Marked<S> {
        Marked { inner }
    }
}

/// A connector that marks each connection it opens, then opens it as before.
#[derive(Debug, Clone)]
pub(crate) struct Marked<S> {
    inner: S,
}

impl<S: tower_service::Service<R>, R> tower_service::Service<R> for Marked<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: R) -> S::Future {
        let _ = CONNECTED.try_with(|c| c.set(true));
        self.inner.call(dst)
    }
}

/// Run `send`, and say whether it opened a connection of its own (false: it
/// went out on a pooled one). A connection it started but lost to a pooled
/// one also counts as its own, so "false" is never a guess.
pub(crate) async fn watching<F: Future>(send: F) -> (F::Output, bool) {
    CONNECTED
        .scope(Cell::new(false), async {
            let out = send.await;
            (out, CONNECTED.with(Cell::get))
        })
        .await
}

/// Whether a failed send is that race: the connection closed or was reset
/// before any answer (not a connect failure, not a timeout).
pub(crate) fn closed_before_answer(err: &reqwest::Error) -> bool {
    !err.is_connect() && !err.is_timeout() && super::classify::is_cut_short(err, false)
}
