//! reqwest's errors as the stable failure kinds: one place decides what is a
//! `dns`, `connect`, `tls`, `timeout`, `decode` or `io` failure, walking the
//! error's sources (hyper, rustls and io errors, however deeply wrapped).

use std::error::Error as StdError;

use crate::failure::Failure;

/// Map a reqwest error to a failure kind; the message walks the error's sources.
pub(crate) fn classify(err: reqwest::Error) -> Failure {
    let err = err.without_url();
    let message = chain(&err);
    if err.is_timeout() {
        Failure::Timeout(message)
    } else if err.is_connect() {
        if message.contains("dns error") {
            Failure::Dns(message)
        } else if has_source::<rustls::Error>(&err, |_| true) {
            Failure::Tls(message)
        } else {
            Failure::Connect(message)
        }
    } else if is_cut_short(&err, err.is_decode()) {
        Failure::Io(message)
    } else if err.is_decode() || has_source::<hyper::Error>(&err, |e| e.is_parse()) {
        Failure::Decode(message)
    } else {
        Failure::Io(message)
    }
}

/// The connection ended early: reset, closed, or a body shorter than announced.
/// `decoding`: the error came from decompressing the body, where an unexpected
/// end without a hyper error below it is the compressed stream's own (every
/// byte of the body arrived), not the connection's.
fn is_cut_short(err: &(dyn StdError + 'static), decoding: bool) -> bool {
    use std::io::ErrorKind as K;
    has_source::<hyper::Error>(err, |e| {
        e.is_incomplete_message() || e.is_closed() || e.is_canceled()
    }) || has_source::<std::io::Error>(err, |e| match e.kind() {
        K::UnexpectedEof => !decoding || has_source::<hyper::Error>(err, |_| true),
        kind => matches!(
            kind,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
        ),
    })
}

/// Whether any error in the chain is an `E` matching `pred`. Looks inside
/// `io::Error`s too (however deeply nested), whose `source()` skips what they wrap.
fn has_source<E: StdError + 'static>(
    err: &(dyn StdError + 'static),
    pred: impl Fn(&E) -> bool,
) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<E>().is_some_and(&pred) {
            return true;
        }
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    false
}

/// "outer: inner: root", skipping parts already contained in the previous one.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}
