//! Parsers of the request options whose values need more than clap: headers
//! (`-H`), basic auth (`-u`) and proxies (`--proxy` and the environment's).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Proxy schemes trawl hands to reqwest. Anything else (a typo such as `htp://`,
/// or `ftp://`) would be ignored by it and the traffic would go around the proxy.
const PROXY_SCHEMES: [&str; 4] = ["http", "https", "socks5", "socks5h"];

/// A usable proxy URL: one of [`PROXY_SCHEMES`] and a host.
pub(crate) fn check_proxy(proxy: &str) -> Result<(), String> {
    let expected = "expected http://, https://, socks5:// or socks5h:// and a host, e.g. http://proxy.example:3128";
    let url = url::Url::parse(proxy).map_err(|e| format!("{e}; {expected}"))?;
    if !PROXY_SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "scheme '{}' is not supported; {expected}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("no host; {expected}"));
    }
    reqwest::Proxy::all(proxy)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The proxy variables reqwest reads from the environment that hold a value it
/// would not use (so requests would bypass the intended proxy), with the reason.
pub(crate) fn bad_proxy_env() -> Vec<(String, String)> {
    [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .iter()
    .filter_map(|name| {
        let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
        // reqwest, like curl, takes a bare host:port as http://.
        let full = if value.contains("://") {
            value.clone()
        } else {
            format!("http://{value}")
        };
        check_proxy(&full)
            .err()
            .map(|why| (name.to_string(), format!("'{value}': {why}")))
    })
    .collect()
}

/// `-u USER:PASSWORD`: an `Authorization: Basic` header, unless `-H` gave one
/// (as in curl, the explicit header wins).
pub(crate) fn basic_auth(headers: &mut HeaderMap, user: &str) -> Result<(), String> {
    use base64::Engine;
    if !user.contains(':') {
        return Err(format!(
            "-u/--user '{user}': expected USER:PASSWORD (trawl never prompts; `USER:` for an empty password)"
        ));
    }
    if headers.contains_key(reqwest::header::AUTHORIZATION) {
        return Ok(());
    }
    let token = base64::engine::general_purpose::STANDARD.encode(user);
    let mut value = HeaderValue::from_str(&format!("Basic {token}"))
        .map_err(|_| "-u/--user: not a valid header value".to_string())?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(())
}

/// What one `-H` says, as curl reads it.
#[derive(Debug)]
pub(crate) enum HeaderArg {
    /// `Name: value`, or `Name;` for an empty value.
    Set(HeaderName, HeaderValue),
    /// `Name:` with nothing after it: the header trawl would send is not sent.
    Remove(HeaderName),
}

pub(crate) fn parse_header(raw: &str) -> Result<HeaderArg, String> {
    let name_of = |name: &str| {
        HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("invalid header name in '{raw}'"))
    };
    if let Some(name) = raw.strip_suffix(';')
        && !name.contains(':')
    {
        return Ok(HeaderArg::Set(name_of(name)?, HeaderValue::from_static("")));
    }
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("invalid header '{raw}': expected \"Name: value\""))?;
    let name = name_of(name)?;
    if value.trim().is_empty() {
        return Ok(HeaderArg::Remove(name));
    }
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("invalid header value in '{raw}'"))?;
    Ok(HeaderArg::Set(name, value))
}
