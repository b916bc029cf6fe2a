//! reqwest's errors as the stable failure kinds: one place decides what is a
//! `dns`, `connect`, `tls`, `timeout`, `decode` or `io` failure, walking the
//! error's sources (hyper, rustls and io errors, however deeply wrapped).

use std::error::Error as StdError;

use crate::failure::Failure;

/// Map a reqwest error to a failure kind; the message walks the error's sources.
pub(crate) fn classify(err: reqwest::Error) -> Failure {
    let err = err.without_url();
    let message = chain(&err);
    if err.is_timeout() && err.is_connect() {
        Failure::Timeout(format!(
            "connecting timed out (--connect-timeout): {message}"
        ))
    } else if err.is_timeout() {
        Failure::Timeout(message)
    } else if err.is_connect() {
        if message.contains(super::resolve::NO_DESCRIPTORS) {
            Failure::Connect(message)
        } else if message.contains("dns error") {
            Failure::Dns(message)
        } else if let Some(tls) = find_source::<rustls::Error>(&err) {
            Failure::Tls(tls_message(tls).unwrap_or(message))
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
pub(super) fn is_cut_short(err: &(dyn StdError + 'static), decoding: bool) -> bool {
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

/// The chain of `err`: itself and its sources, looking inside `io::Error`s
/// too (however deeply nested), whose `source()` skips what they wrap.
fn sources<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), next_source)
}

fn next_source<'a>(e: &&'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    let e: &'a (dyn StdError + 'static) = *e;
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(wrapped) => Some(wrapped as &(dyn StdError + 'static)),
        None => e.source(),
    }
}

/// Whether any error in the chain is an `E` matching `pred`.
fn has_source<E: StdError + 'static>(
    err: &(dyn StdError + 'static),
    pred: impl Fn(&E) -> bool,
) -> bool {
    sources(err).any(|e| e.downcast_ref::<E>().is_some_and(&pred))
}

/// The first error of type `E` in the chain.
fn find_source<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    sources(err).find_map(|e| e.downcast_ref::<E>())
}

/// A TLS failure in words a person reads, as curl's are, for the cases people
/// meet; `None` leaves rustls's own text.
fn tls_message(err: &rustls::Error) -> Option<String> {
    use rustls::CertificateError as C;
    let date = |t: &rustls::pki_types::UnixTime| {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.as_secs());
        humantime::format_rfc3339_seconds(when).to_string()
    };
    let text = match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => "certificate signed by an unknown authority (a private CA: give --cacert; or --insecure)".to_owned(),
            C::Expired => "certificate expired".to_owned(),
            C::ExpiredContext { not_after, .. } => format!("certificate expired on {}", date(not_after)),
            C::NotValidYet => "certificate not valid yet".to_owned(),
            C::NotValidYetContext { not_before, .. } => {
                format!("certificate not valid before {}", date(not_before))
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate is not valid for this host name".to_owned()
            }
            C::Revoked => "certificate revoked".to_owned(),
            C::BadSignature => "certificate signature does not verify (a key too weak, or a forged certificate)".to_owned(),
            C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                "certificate signature algorithm not accepted (SHA-1 or another weak one)".to_owned()
            }
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "certificate is not for a TLS server".to_owned()
            }
            C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                "self-signed certificate (give --cacert to trust it, or --insecure)".to_owned()
            }
            _ => return None,
        },
        rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion) => {
            "the server offers only TLS 1.1 or older (TLS 1.2 or 1.3 is needed)".to_owned()
        }
        rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure) => {
            "the server refused the TLS handshake (no TLS version or cipher in common)".to_owned()
        }
        _ => return None,
    };
    Some(text)
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

#[cfg(test)]
mod tests {
    use super::tls_message;
    use rustls::CertificateError as C;
    use rustls::pki_types::UnixTime;

    #[test]
    fn tls_failures_read_as_curls_do() {
        let t = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        for (err, says) in [
            (
                rustls::Error::InvalidCertificate(C::UnknownIssuer),
                "unknown authority",
            ),
            (
                rustls::Error::InvalidCertificate(C::ExpiredContext {
                    time: t(1_800_000_000),
                    not_after: t(1_700_000_000),
                }),
                "expired on 2023-11-14T22:13:20Z",
            ),
            (
                rustls::Error::InvalidCertificate(C::BadSignature),
                "key too weak",
            ),
            (
                rustls::Error::InvalidCertificate(C::UnsupportedSignatureAlgorithmContext {
                    signature_algorithm_id: vec![1],
                    supported_algorithms: vec![],
                }),
                "SHA-1",
            ),
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion),
                "TLS 1.1 or older",
            ),
        ] {
            let text = tls_message(&err).unwrap();
            assert!(text.contains(says), "{err:?}: {text}");
        }
    }
}
