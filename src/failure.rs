//! The per-URL failure vocabulary: the stable error kinds (part of the output
//! contract) and why one input failed. Failures are data, never control flow.
//! This file imports nothing from the crate: every stage speaks it.

use serde::{Deserialize, Serialize};

/// The error kinds, each with its stable name, listed once: the enum, its
/// names (serde's and `as_str`'s) and `ErrorKind::ALL` all come from here.
macro_rules! error_kinds {
    ($($kind:ident => $name:literal),* $(,)?) => {
        /// Stable, snake_case failure kinds (part of the output contract).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum ErrorKind {
            $(#[serde(rename = $name)] $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in the order of the contract.
            pub const ALL: &[ErrorKind] = &[$(ErrorKind::$kind,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    InvalidInput => "invalid_input",
    UnsupportedScheme => "unsupported_scheme",
    Dns => "dns",
    Connect => "connect",
    Tls => "tls",
    Timeout => "timeout",
    HttpStatus => "http_status",
    TooManyRedirects => "too_many_redirects",
    BodyTooLarge => "body_too_large",
    Decode => "decode",
    Process => "process",
    CircuitOpen => "circuit_open",
    Cancelled => "cancelled",
    Io => "io",
    RobotsDisallowed => "robots_disallowed",
}

/// Why one input failed. `kind()` is the stable name written to the record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    InvalidInput(String),
    #[error("unsupported scheme '{0}' (only http and https)")]
    UnsupportedScheme(String),
    #[error("{0}")]
    Dns(String),
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Timeout(String),
    #[error("HTTP {0}")]
    HttpStatus(String),
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    #[error("decoded body exceeds --max-body of {0} bytes")]
    BodyTooLarge(u64),
    #[error("{0}")]
    Decode(String),
    #[error("{0}")]
    Process(String),
    #[error("{0} consecutive transport failures to this host; not tried")]
    CircuitOpen(u32),
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    RobotsDisallowed(String),
}

impl Failure {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Failure::InvalidInput(_) => ErrorKind::InvalidInput,
            Failure::UnsupportedScheme(_) => ErrorKind::UnsupportedScheme,
            Failure::Dns(_) => ErrorKind::Dns,
            Failure::Connect(_) => ErrorKind::Connect,
            Failure::Tls(_) => ErrorKind::Tls,
            Failure::Timeout(_) => ErrorKind::Timeout,
            Failure::HttpStatus(_) => ErrorKind::HttpStatus,
            Failure::TooManyRedirects(_) => ErrorKind::TooManyRedirects,
            Failure::BodyTooLarge(_) => ErrorKind::BodyTooLarge,
            Failure::Decode(_) => ErrorKind::Decode,
            Failure::Process(_) => ErrorKind::Process,
            Failure::CircuitOpen(_) => ErrorKind::CircuitOpen,
            Failure::Cancelled(_) => ErrorKind::Cancelled,
            Failure::Io(_) => ErrorKind::Io,
            Failure::RobotsDisallowed(_) => ErrorKind::RobotsDisallowed,
        }
    }

    pub fn info(&self) -> ErrorInfo {
        ErrorInfo {
            kind: self.kind(),
            message: self.to_string(),
        }
    }
}

/// Why an input failed: its stable kind and a message for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorInfo {
    pub kind: ErrorKind,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_serializes_as_its_name_and_back() {
        let mut names = std::collections::HashSet::new();
        for &kind in ErrorKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::Value::String(kind.as_str().into()));
            assert_eq!(serde_json::from_value::<ErrorKind>(json).unwrap(), kind);
            assert!(names.insert(kind.as_str()), "{kind:?} repeats a name");
            let snake = kind
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_');
            assert!(snake, "{kind:?}");
        }
        assert_eq!(names.len(), 15);
    }
}
