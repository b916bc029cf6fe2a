//! A robots.txt parser and matcher written from RFC 9309 and Google's published
//! description of its parser. Groups: one or more `user-agent` lines, then
//! rules, until the next `user-agent` line after a rule (blank lines end
//! nothing); rules before the first `user-agent` line belong to no group and
//! are ignored. The groups naming the crawler's product token (the value up to
//! the first character outside `[A-Za-z_-]`, compared without case) are
//! combined; if none does, the `*` groups are. The rule with the longest
//! pattern wins, `allow` winning a tie; `*` matches any run of characters and a
//! final `$` anchors the end. Patterns and paths are compared percent-encoding
//! normalised: unreserved characters decoded, other escapes upper-cased,
//! non-ASCII octets encoded; `%2A` and `%24` in a pattern are a literal `*` and
//! `$`. Google's extensions kept: a missing `:` after a known key, the usual
//! misspellings of `disallow`, lines cut (not dropped) at 16,664 bytes, a
//! (partial) UTF-8 byte order mark skipped, and `allow: /d/index.html` also
//! allowing `/d/`.

use std::time::Duration;

/// Google's longest line: 8 x 2083 bytes. Longer lines are cut there.
pub(crate) const MAX_LINE: usize = 8 * 2083;

/// One token of a pattern.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Byte(u8),
    /// `*`: any run of characters.
    Any,
    /// A final `$`: the end of the path.
    End,
}

#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    tokens: Vec<Token>,
    /// The pattern's length in octets, as normalised: the longest wins.
    length: usize,
}

/// The rules that apply to one product token.
#[derive(Debug, Default)]
pub(crate) struct RobotsTxt {
    rules: Vec<Rule>,
    /// `Crawl-delay` of the applicable groups (the first one given).
    pub(crate) delay: Option<f64>,
}

#[derive(Default)]
struct Group {
    ours: bool,
    global: bool,
    rules: Vec<Rule>,
    delay: Option<f64>,
}

/// The product token a `user-agent` value names: its first run of
/// `[A-Za-z_-]`, or `*`.
fn agent_token(value: &str) -> &str {
    let end = value
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_' || c == '-'))
        .unwrap_or(value.len());
    &value[..end]
}

enum Key {
    UserAgent,
    Allow,
    Disallow,
    CrawlDelay,
    Other,
}

fn key(name: &str) -> Key {
    match name.to_ascii_lowercase().as_str() {
        "user-agent" | "useragent" | "user agent" => Key::UserAgent,
        "allow" => Key::Allow,
        "disallow" | "dissallow" | "dissalow" | "disalow" | "diasllow" | "disallaw" => {
            Key::Disallow
        }
        "crawl-delay" | "crawldelay" => Key::CrawlDelay,
        _ => Key::Other,
    }
}

/// `key: value` of one line, comments removed; a missing colon is accepted
/// when the line is exactly two words (`disallow /x`).
fn split_line(line: &str) -> Option<(&str, &str)> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return None;
    }
    if let Some((k, v)) = line.split_once(':') {
        return Some((k.trim(), v.trim()));
    }
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(k), Some(v), None) => Some((k, v)),
        _ => None,
    }
}

impl RobotsTxt {
    /// Parse `body` for the crawler whose product token is `agent`.
    pub(crate) fn parse(agent: &str, body: &[u8]) -> RobotsTxt {
        let agent = agent.to_ascii_lowercase();
        let body = skip_bom(body);
        let mut groups: Vec<Group> = Vec::new();
        // Whether the current group has had a rule, so a user-agent line starts a new one.
        let mut open = false;
        for raw in body.split(|&b| b == b'\n' || b == b'\r') {
            let raw = &raw[..raw.len().min(MAX_LINE)];
            let line = String::from_utf8_lossy(raw);
            let Some((name, value)) = split_line(&line) else {
                continue;
            };
            match key(name) {
                Key::UserAgent => {
                    if open || groups.is_empty() {
                        groups.push(Group::default());
                        open = false;
                    }
                    let group = groups.last_mut().expect("pushed");
                    if value.starts_with('*') {
                        group.global = true;
                    } else {
                        let token = agent_token(value);
                        group.ours |= !token.is_empty() && token.eq_ignore_ascii_case(&agent);
                    }
                }
                Key::Allow | Key::Disallow | Key::CrawlDelay if groups.is_empty() => {}
                Key::Allow | Key::Disallow => {
                    open = true;
                    let allow = matches!(key(name), Key::Allow);
                    let group = groups.last_mut().expect("checked");
                    group.rules.extend(rules(allow, value));
                }
                Key::CrawlDelay => {
                    open = true;
                    let group = groups.last_mut().expect("checked");
                    if group.delay.is_none() {
                        group.delay = value.parse::<f64>().ok().filter(|d| d.is_finite());
                    }
                }
                Key::Other => {}
            }
        }
        let ours = groups.iter().any(|g| g.ours);
        let mut txt = RobotsTxt::default();
        for g in groups
            .into_iter()
            .filter(|g| if ours { g.ours } else { g.global })
        {
            txt.delay = txt.delay.or(g.delay);
            txt.rules.extend(g.rules);
        }
        txt
    }

    /// Whether the path (with `?query`, without `#fragment`) may be fetched.
    pub(crate) fn allowed(&self, path_and_query: &str) -> bool {
        if path_and_query == "/robots.txt" {
            return true;
        }
        let path = normalise(path_and_query.as_bytes());
        let mut best: Option<(usize, bool)> = None;
        for rule in &self.rules {
            if !matches(&rule.tokens, &path) {
                continue;
            }
            let better = match best {
                None => true,
                Some((length, allow)) => {
                    rule.length > length || (rule.length == length && rule.allow && !allow)
                }
            };
            if better {
                best = Some((rule.length, rule.allow));
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }

    /// `Crawl-delay`, when positive.
    pub(crate) fn crawl_delay(&self) -> Option<Duration> {
        self.delay
            .filter(|d| *d > 0.0)
            .map(|d| Duration::from_secs_f64(d.min(86_400.0)))
    }
}

/// A leading UTF-8 byte order mark, whole or its first one or two bytes.
fn skip_bom(body: &[u8]) -> &[u8] {
    for prefix in [&[0xEF, 0xBB, 0xBF][..], &[0xEF, 0xBB], &[0xEF]] {
        if let Some(rest) = body.strip_prefix(prefix) {
            return rest;
        }
    }
    body
}

/// The rule of one `allow`/`disallow` line, and for `allow: .../index.html`
/// (or `.htm`) also its directory, exactly.
fn rules(allow: bool, value: &str) -> Vec<Rule> {
    if value.is_empty() {
        // An empty pattern matches nothing.
        return Vec::new();
    }
    let mut out = vec![rule(allow, value)];
    if allow {
        for index in ["/index.html", "/index.htm"] {
            if let Some(dir) = value.strip_suffix(index) {
                out.push(rule(true, &format!("{dir}/$")));
                break;
            }
        }
    }
    out
}

fn rule(allow: bool, pattern: &str) -> Rule {
    let bytes = pattern.as_bytes();
    let mut tokens = Vec::with_capacity(bytes.len());
    let mut length = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'*' => {
                tokens.push(Token::Any);
                length += 1;
            }
            b'$' if i + 1 == bytes.len() => {
                tokens.push(Token::End);
                length += 1;
            }
            b'%' if let Some(v) = escaped(bytes, i) => {
                length += push_escape(&mut tokens, v);
                i += 2;
            }
            _ => length += push_byte(&mut tokens, b),
        }
        i += 1;
    }
    Rule {
        allow,
        tokens,
        length,
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The octet of the `%XX` escape at `at`, when it is one.
fn escaped(bytes: &[u8], at: usize) -> Option<u8> {
    let h = hex(*bytes.get(at + 1)?)?;
    let l = hex(*bytes.get(at + 2)?)?;
    Some(h << 4 | l)
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `%XX` in a pattern: an unreserved character (and `*`, `$`) as itself,
/// anything else as the upper-case escape. Returns the octets it stands for.
fn push_escape(tokens: &mut Vec<Token>, v: u8) -> usize {
    if unreserved(v) || v == b'*' || v == b'$' {
        tokens.push(Token::Byte(v));
        1
    } else {
        for b in escape(v) {
            tokens.push(Token::Byte(b));
        }
        3
    }
}

/// A literal byte of a pattern: non-ASCII (and controls, space) escaped.
fn push_byte(tokens: &mut Vec<Token>, b: u8) -> usize {
    if b > 0x7E || b <= 0x20 {
        for e in escape(b) {
            tokens.push(Token::Byte(e));
        }
        3
    } else {
        tokens.push(Token::Byte(b));
        1
    }
}

fn escape(b: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]
}

/// A path as patterns see it: unreserved escapes (and `%2A`, `%24`) decoded,
/// other escapes upper-cased, non-ASCII octets escaped.
fn normalise(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'%'
            && let Some(v) = escaped(path, i)
        {
            if unreserved(v) || v == b'*' || v == b'$' {
                out.push(v);
            } else {
                out.extend_from_slice(&escape(v));
            }
            i += 3;
            continue;
        }
        if b > 0x7E || b <= 0x20 {
            out.extend_from_slice(&escape(b));
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

/// Whether `tokens` match a prefix of `path` (the whole of it after a final `$`).
fn matches(tokens: &[Token], path: &[u8]) -> bool {
    // The positions in `path` reachable after the tokens so far, ascending.
    let mut positions = vec![0usize];
    for token in tokens {
        match token {
            Token::Any => {
                let from = positions[0];
                positions = (from..=path.len()).collect();
            }
            Token::End => return positions.contains(&path.len()),
            Token::Byte(b) => {
                positions = positions
                    .into_iter()
                    .filter(|&p| path.get(p) == Some(b))
                    .map(|p| p + 1)
                    .collect();
                if positions.is_empty() {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests;
