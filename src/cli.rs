//! Command-line surface: the raw clap `Cli` (its doc comments are the help text) and
//! its one-time conversion into a validated, typed `Config` that the rest of the
//! program shares as `Arc<Config>`. Cross-flag checks live in that conversion.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const EXAMPLES: &str = "\
Examples:
  trawl urls.txt > results.jsonl
  cat urls.txt | trawl -c 200 --rate 50/s --errors failed.jsonl | jq -r 'select(.status==200).url'
  trawl failed.jsonl -o retry.jsonl        # re-feed failures (records are valid input)
  trawl --title --ordered urls.txt | jq -r '[.url, .title] | @tsv'
  trawl demo | jq -c '{url, status, title}' # offline tour against an embedded server

Input: one URL per line (blank lines and #comments skipped), or a JSON request object
{\"url\": ..., \"method\": ..., \"headers\": {...}, \"body\": ..., \"id\": ...} per line.

Exit codes: 0 all ok, 1 failures beyond --allow-failures, 2 usage or fatal error,
130 interrupted (143 on SIGTERM).";

/// `trawl --version`: the version and the CPU-dependent choice (the SHA-256 kernel
/// for bodies hashed together), which benchmark results record.
fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{}\nsha256 of similar bodies together: {}",
            env!("CARGO_PKG_VERSION"),
            crate::hash::kernel()
        )
    })
}

/// Fetch lists of URLs concurrently and politely; one JSON line per input.
#[derive(Debug, Parser)]
#[command(name = "trawl", version, long_version = long_version(), after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Input files, read line by line as a stream; `-` or none means stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline offline against an embedded local server.
    ///
    /// Starts a server on 127.0.0.1 with fast, slow, JSON, HTML, redirecting,
    /// failing and flaky endpoints, and fetches a generated list from it with
    /// the options given (titles are on by default).
    Demo {
        #[command(flatten)]
        run: RunArgs,
    },
}

/// Options shared by a normal run and `trawl demo`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Maximum requests in flight at once.
    #[arg(
        short = 'c',
        long,
        value_name = "N",
        default_value_t = 50,
        help_heading = "Concurrency and politeness"
    )]
    pub concurrency: usize,

    /// Maximum requests in flight per host.
    #[arg(long, value_name = "N", help_heading = "Concurrency and politeness")]
    pub per_host: Option<usize>,

    /// Global rate of request starts, spread evenly: 100, 100/s, 600/m, 5/15s.
    #[arg(short = 'r', long, value_name = "RATE", value_parser = parse_rate, help_heading = "Concurrency and politeness")]
    pub rate: Option<Rate>,

    /// Rate of request starts per host, spread evenly (same syntax as --rate).
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Concurrency and politeness")]
    pub host_rate: Option<Rate>,

    /// Retries after connect errors, timeouts, resets, truncated bodies and
    /// HTTP 408/429/500/502/503/504 (never other statuses), with backoff.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        help_heading = "Concurrency and politeness"
    )]
    pub retries: u32,

    /// Longest wait honoured from a Retry-After header (longer ones are capped).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, help_heading = "Concurrency and politeness")]
    pub max_retry_wait: Duration,

    /// After N consecutive transport failures to a host, fail its remaining inputs
    /// fast with `circuit_open`.
    #[arg(long, value_name = "N", help_heading = "Concurrency and politeness")]
    pub circuit_breaker: Option<u32>,

    /// HTTP method (default GET, or POST with --data).
    #[arg(short = 'X', long, value_name = "METHOD", help_heading = "Requests")]
    pub method: Option<String>,

    /// Extra request header "Name: value"; repeatable.
    #[arg(
        short = 'H',
        long = "header",
        value_name = "HEADER",
        help_heading = "Requests"
    )]
    pub headers: Vec<String>,

    /// Request body; `@FILE` reads it from a file. Implies POST unless -X is given.
    #[arg(short = 'd', long, value_name = "DATA", help_heading = "Requests")]
    pub data: Option<String>,

    /// User-Agent header [default: trawl/VERSION].
    #[arg(short = 'A', long, value_name = "UA", help_heading = "Requests")]
    pub user_agent: Option<String>,

    /// Time limit for one attempt: connect, headers, all redirects and the whole body.
    #[arg(short = 't', long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, help_heading = "Requests")]
    pub timeout: Duration,

    /// Time limit for establishing a connection.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, help_heading = "Requests")]
    pub connect_timeout: Duration,

    /// Redirects followed before failing with `too_many_redirects`.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        help_heading = "Requests"
    )]
    pub max_redirects: u32,

    /// Largest decoded body accepted (e.g. 500KB, 16MiB); larger fails with `body_too_large`.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size_arg, help_heading = "Requests")]
    pub max_body: u64,

    /// Do not verify TLS certificates.
    #[arg(long, help_heading = "Requests")]
    pub insecure: bool,

    /// Resolve HOST at PORT to ADDR (comma-separated for several) without DNS,
    /// as curl does; TLS still checks the certificate against HOST. Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = crate::resolve::parse_pin, help_heading = "Requests")]
    pub resolve: Vec<crate::resolve::Pin>,

    /// Proxy URL for all requests (http://, https:// or socks5://).
    #[arg(long, value_name = "URL", help_heading = "Requests")]
    pub proxy: Option<String>,

    /// Statuses counted as ok: codes, ranges and classes, e.g. 200,204 or 200-299 or 2xx,3xx.
    #[arg(long, value_name = "LIST", default_value = "2xx,3xx", value_parser = parse_status_set, help_heading = "Requests")]
    pub ok_status: StatusSet,

    /// Body hash written to the record.
    #[arg(long, value_enum, default_value_t = HashKind::Sha256, help_heading = "Processing")]
    pub hash: HashKind,

    /// Extract the HTML <title> (charset and entities decoded).
    #[arg(long, help_heading = "Processing")]
    pub title: bool,

    /// Include the body in the record: text when UTF-8, else base64.
    #[arg(long, help_heading = "Processing")]
    pub body: bool,

    /// Run a jq filter on each body parsed as JSON; its outputs become `jq` (a
    /// body that is not JSON, or a filter error, fails the record with `process`).
    #[arg(long, value_name = "FILTER", help_heading = "Processing")]
    pub jq: Option<String>,

    /// Every match of a regular expression in the body (its first capture group
    /// when it has one), as `matches`.
    #[arg(long, value_name = "RE", help_heading = "Processing")]
    pub regex: Option<String>,

    /// Text of the HTML elements matching a CSS selector, as `select`; with
    /// `SELECTOR@attr`, that attribute's values instead (e.g. 'a@href').
    #[arg(long, value_name = "CSS", help_heading = "Processing")]
    pub select: Option<String>,

    /// Save each accepted body to DIR/xx/SHA256 (named by content, never by the
    /// URL; identical bodies are stored once), as `saved`.
    #[arg(long, value_name = "DIR", help_heading = "Processing")]
    pub save: Option<PathBuf>,

    /// Write records to PATH instead of stdout.
    #[arg(
        short = 'o',
        long,
        value_name = "PATH",
        help_heading = "Output and runs"
    )]
    pub output: Option<PathBuf>,

    /// Write failure records to PATH instead of the main stream.
    #[arg(long, value_name = "PATH", help_heading = "Output and runs")]
    pub errors: Option<PathBuf>,

    /// Write records in input order (bounded reorder window).
    #[arg(long, help_heading = "Output and runs")]
    pub ordered: bool,

    /// Write a JSON run summary to PATH.
    #[arg(long, value_name = "PATH", help_heading = "Output and runs")]
    pub summary: Option<PathBuf>,

    /// Skip inputs that already have a final record in -o/--errors and append the
    /// rest; torn lines and `cancelled` records from a stopped run are dropped.
    #[arg(long, requires = "output", help_heading = "Output and runs")]
    pub resume: bool,

    /// Failures tolerated before the exit code becomes 1: a count or a percentage (5%)
    /// [default: 0; `trawl demo`: 100%]
    #[arg(long, value_name = "N|P%", value_parser = parse_threshold, help_heading = "Output and runs")]
    pub allow_failures: Option<Threshold>,

    /// Fetch only share K of N (1-based), split by host name: every URL of a host
    /// lands in the same share, and the split is the same on every machine.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, help_heading = "Output and runs")]
    pub shard: Option<Shard>,

    /// Show a progress bar on stderr (default: when stderr is a terminal).
    #[arg(long, overrides_with = "no_progress", help_heading = "Output and runs")]
    pub progress: bool,

    /// Never show a progress bar.
    #[arg(long, overrides_with = "progress", help_heading = "Output and runs")]
    pub no_progress: bool,

    /// Quiet: no progress bar, no summary, errors only in logs.
    #[arg(short, long, help_heading = "Output and runs")]
    pub quiet: bool,

    /// More logs on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, help_heading = "Output and runs")]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text, help_heading = "Output and runs")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashKind {
    Sha256,
    Blake3,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `count` request starts per `per`, spread evenly over that period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    /// The gap between two request starts.
    pub fn interval(&self) -> Duration {
        self.per / self.count.get()
    }
}

/// Accepted HTTP statuses, as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

/// How many failures a run may have and still exit 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Count(u64),
    Percent(f64),
}

impl Threshold {
    pub fn allows(&self, failed: u64, total: u64) -> bool {
        match *self {
            Threshold::Count(n) => failed <= n,
            Threshold::Percent(p) => total == 0 || (failed as f64) * 100.0 <= p * (total as f64),
        }
    }
}

/// One share of a list split across machines: `k` of `n`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    /// Whether an input with this key (its host name) belongs to this share. The
    /// key's SHA-256 decides, so the split never depends on the machine, the
    /// platform or the version of trawl.
    pub fn owns(&self, key: &str) -> bool {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        head % self.n == self.k - 1
    }
}

/// Where input lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    Stdin,
    File(PathBuf),
    /// An in-memory list (used by `trawl demo` and in-process tests).
    Text {
        name: String,
        text: String,
    },
}

impl InputSpec {
    pub fn name(&self) -> String {
        match self {
            InputSpec::Stdin => "<stdin>".to_owned(),
            InputSpec::File(path) => path.display().to_string(),
            InputSpec::Text { name, .. } => name.clone(),
        }
    }
}

/// Whether the progress bar is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Auto,
    Always,
    Never,
}

/// The validated run configuration, shared by every stage as `Arc<Config>`.
#[derive(Debug, Clone)]
pub struct Config {
    pub inputs: Vec<InputSpec>,
    pub concurrency: NonZeroUsize,
    pub per_host: Option<NonZeroUsize>,
    pub rate: Option<Rate>,
    pub host_rate: Option<Rate>,
    pub retries: u32,
    pub max_retry_wait: Duration,
    pub circuit_breaker: Option<NonZeroU32>,
    pub method: Option<Method>,
    pub headers: HeaderMap,
    pub data: Option<Vec<u8>>,
    pub user_agent: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_redirects: u32,
    pub max_body: u64,
    pub insecure: bool,
    pub proxy: Option<String>,
    /// `--resolve` pins.
    pub resolve: Vec<crate::resolve::Pin>,
    pub ok_status: StatusSet,
    pub hash: HashKind,
    pub title: bool,
    pub body: bool,
    pub jq: Option<crate::extract::Jq>,
    pub regex: Option<crate::extract::Pattern>,
    pub select: Option<crate::extract::Select>,
    pub save: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub errors: Option<PathBuf>,
    pub ordered: bool,
    pub summary: Option<PathBuf>,
    pub resume: bool,
    pub allow_failures: Threshold,
    pub shard: Option<Shard>,
    pub progress: ProgressMode,
    pub quiet: bool,
    pub verbose: u8,
    pub log_format: LogFormat,
    /// Time requests in flight get to finish after Ctrl-C/SIGTERM.
    pub grace: Duration,
}

/// A value that failed validation, reported like a clap error (exit 2).
pub fn usage_error(message: impl std::fmt::Display) -> clap::Error {
    use clap::CommandFactory;
    Cli::command().error(clap::error::ErrorKind::ValueValidation, message)
}

/// An optional argument compiled once (a `--jq` filter, `--regex`, `--select`);
/// one that does not compile is a usage error.
fn compiled<T>(
    arg: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, clap::Error> {
    arg.as_deref().map(parse).transpose().map_err(usage_error)
}

impl RunArgs {
    /// Validate and convert into a `Config` reading the given inputs.
    pub fn into_config(self, inputs: Vec<InputSpec>) -> Result<Config, clap::Error> {
        let concurrency = NonZeroUsize::new(self.concurrency)
            .ok_or_else(|| usage_error("--concurrency must be at least 1"))?;
        let per_host = match self.per_host {
            None => None,
            Some(n) => Some(
                NonZeroUsize::new(n).ok_or_else(|| usage_error("--per-host must be at least 1"))?,
            ),
        };
        let circuit_breaker = match self.circuit_breaker {
            None => None,
            Some(n) => Some(
                NonZeroU32::new(n)
                    .ok_or_else(|| usage_error("--circuit-breaker must be at least 1"))?,
            ),
        };
        let method = self
            .method
            .as_deref()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| usage_error(format!("invalid --method '{m}'")))
            })
            .transpose()?;
        let mut headers = HeaderMap::new();
        for raw in &self.headers {
            let (name, value) = parse_header(raw).map_err(usage_error)?;
            headers.append(name, value);
        }
        let data = match self.data {
            None => None,
            Some(d) => Some(match d.strip_prefix('@') {
                Some(path) => std::fs::read(path)
                    .map_err(|e| usage_error(format!("cannot read --data file '{path}': {e}")))?,
                None => d.into_bytes(),
            }),
        };
        if let Some(proxy) = &self.proxy {
            check_proxy(proxy)
                .map_err(|why| usage_error(format!("invalid --proxy '{proxy}': {why}")))?;
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(usage_error(
                "--timeout and --connect-timeout must be above zero",
            ));
        }
        if let (Some(o), Some(e)) = (&self.output, &self.errors)
            && o == e
        {
            return Err(usage_error("--output and --errors must be different files"));
        }
        let progress = match (self.progress, self.no_progress || self.quiet) {
            (_, true) => ProgressMode::Never,
            (true, false) => ProgressMode::Always,
            (false, false) => ProgressMode::Auto,
        };
        Ok(Config {
            inputs,
            concurrency,
            per_host,
            rate: self.rate,
            host_rate: self.host_rate,
            retries: self.retries,
            max_retry_wait: self.max_retry_wait,
            circuit_breaker,
            method,
            headers,
            data,
            user_agent: self
                .user_agent
                .unwrap_or_else(|| concat!("trawl/", env!("CARGO_PKG_VERSION")).to_owned()),
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            max_redirects: self.max_redirects,
            max_body: self.max_body,
            insecure: self.insecure,
            proxy: self.proxy,
            resolve: self.resolve,
            ok_status: self.ok_status,
            hash: self.hash,
            title: self.title,
            body: self.body,
            jq: compiled(&self.jq, crate::extract::Jq::parse)?,
            regex: compiled(&self.regex, crate::extract::Pattern::parse)?,
            select: compiled(&self.select, crate::extract::Select::parse)?,
            save: self.save,
            output: self.output,
            errors: self.errors,
            ordered: self.ordered,
            summary: self.summary,
            resume: self.resume,
            allow_failures: self.allow_failures.unwrap_or(Threshold::Count(0)),
            shard: self.shard,
            progress,
            quiet: self.quiet,
            verbose: self.verbose,
            log_format: self.log_format,
            grace: Duration::from_secs(3),
        })
    }
}

/// What `main` should do after parsing.
pub enum Action {
    Run(Config),
    Demo(Config),
}

impl Cli {
    pub fn into_action(self) -> Result<Action, clap::Error> {
        match self.command {
            Some(Command::Demo { mut run }) => {
                // The demo fails some inputs on purpose; that alone is no reason to exit 1.
                run.title = true;
                run.allow_failures = run.allow_failures.or(Some(Threshold::Percent(100.0)));
                Ok(Action::Demo(run.into_config(Vec::new())?))
            }
            None => {
                let inputs = if self.inputs.is_empty() {
                    vec![InputSpec::Stdin]
                } else {
                    self.inputs
                        .into_iter()
                        .map(|p| {
                            if p.as_os_str() == "-" {
                                InputSpec::Stdin
                            } else {
                                InputSpec::File(p)
                            }
                        })
                        .collect()
                };
                Ok(Action::Run(self.run.into_config(inputs)?))
            }
        }
    }
}

/// Proxy schemes trawl hands to reqwest. Anything else (a typo such as `htp://`,
/// or `ftp://`) would be ignored by it and the traffic would go around the proxy.
const PROXY_SCHEMES: [&str; 4] = ["http", "https", "socks5", "socks5h"];

/// A usable proxy URL: one of [`PROXY_SCHEMES`] and a host.
pub fn check_proxy(proxy: &str) -> Result<(), String> {
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
pub fn bad_proxy_env() -> Vec<(String, String)> {
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

fn parse_header(raw: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("invalid header '{raw}': expected \"Name: value\""))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("invalid header name in '{raw}'"))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("invalid header value in '{raw}'"))?;
    Ok((name, value))
}

/// `100`, `100/s`, `600/m`, `5/15s`, `10/500ms`, `3600/h`.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let s = s.trim();
    let (count, per) = match s.split_once('/') {
        None => (s, Duration::from_secs(1)),
        Some((count, unit)) => {
            let per = match unit {
                "s" => Duration::from_secs(1),
                "m" => Duration::from_secs(60),
                "h" => Duration::from_secs(3600),
                other => parse_duration(other)
                    .map_err(|e| format!("invalid rate period '{other}': {e}"))?,
            };
            (count, per)
        }
    };
    let count: u32 = count.parse().map_err(|_| {
        format!("invalid rate '{s}': expected N, N/s, N/m, N/h or N/DURATION such as 5/15s")
    })?;
    let count = NonZeroU32::new(count).ok_or_else(|| "rate must be above zero".to_owned())?;
    if per.is_zero() {
        return Err("rate period must be above zero".to_owned());
    }
    Ok(Rate { count, per })
}

/// `250ms`, `1s`, `2m`, `1h 30m`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|e| format!("invalid duration '{s}': {e}"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration '{s}': {e} (try 250ms, 10s, 2m)"))
}

/// `1048576`, `500KB`, `1MiB`, `2 GB`.
pub fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s.trim())
        .map_err(|e| format!("invalid size '{s}': {e} (try 500KB, 16MiB)"))
}

/// `200`, `200-299`, `2xx`, comma-separated.
pub fn parse_status_set(s: &str) -> Result<StatusSet, String> {
    let mut ranges = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid status '{part}': expected 200, 200-299 or 2xx");
        let range = if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX"))
        {
            let c: u16 = class.parse().map_err(|_| bad())?;
            if !(1..=5).contains(&c) {
                return Err(bad());
            }
            (c * 100, c * 100 + 99)
        } else if let Some((lo, hi)) = part.split_once('-') {
            (
                lo.trim().parse().map_err(|_| bad())?,
                hi.trim().parse().map_err(|_| bad())?,
            )
        } else {
            let code: u16 = part.parse().map_err(|_| bad())?;
            (code, code)
        };
        if range.0 > range.1 || range.0 < 100 || range.1 > 999 {
            return Err(bad());
        }
        ranges.push(range);
    }
    if ranges.is_empty() {
        return Err("--ok-status needs at least one status".to_owned());
    }
    Ok(StatusSet(ranges))
}

/// `10` (failures) or `2.5%` (of all records).
pub fn parse_threshold(s: &str) -> Result<Threshold, String> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("invalid percentage '{s}'"))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("percentage '{s}' must be between 0% and 100%"));
        }
        Ok(Threshold::Percent(p))
    } else {
        s.parse()
            .map(Threshold::Count)
            .map_err(|_| format!("invalid failure threshold '{s}': expected N or P%"))
    }
}

/// `K/N` with 1 <= K <= N.
pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("invalid shard '{s}': expected K/N with 1 <= K <= N, e.g. 2/8");
    let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || k > n {
        return Err(bad());
    }
    Ok(Shard { k, n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn rates_parse() {
        let r = parse_rate("100").unwrap();
        assert_eq!(r.interval(), Duration::from_millis(10));
        assert_eq!(
            parse_rate("600/m").unwrap().interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            parse_rate("5/15s").unwrap().interval(),
            Duration::from_secs(3)
        );
        assert_eq!(parse_rate("100/s").unwrap().count.get(), 100);
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("5/0s").is_err());
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size_arg("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size_arg("500KB").unwrap(), 500_000);
        assert!(parse_size_arg("lots").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn status_sets_parse() {
        let s = parse_status_set("2xx,304,400-404").unwrap();
        assert!(s.contains(204) && s.contains(304) && s.contains(404));
        assert!(!s.contains(301) && !s.contains(500));
        assert!(parse_status_set("9xx").is_err());
        assert!(parse_status_set("300-200").is_err());
    }

    #[test]
    fn thresholds() {
        assert!(parse_threshold("0").unwrap().allows(0, 10));
        assert!(!parse_threshold("0").unwrap().allows(1, 10));
        assert!(parse_threshold("10%").unwrap().allows(1, 10));
        assert!(!parse_threshold("10%").unwrap().allows(2, 10));
        assert!(parse_threshold("x%").is_err());
    }

    #[test]
    fn headers_parse() {
        let (n, v) = parse_header("X-Token:  abc ").unwrap();
        assert_eq!(n.as_str(), "x-token");
        assert_eq!(v, "abc");
        assert!(parse_header("no colon").is_err());
    }

    #[test]
    fn shards_parse_and_partition_every_key() {
        assert_eq!(parse_shard("2/8"), Ok(Shard { k: 2, n: 8 }));
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (1..=5).map(|k| Shard { k, n: 5 }).collect();
        let mut per_shard = [0; 5];
        for i in 0..1000 {
            let key = format!("host{i}.example");
            let owners: Vec<usize> = (0..5).filter(|&s| shards[s].owns(&key)).collect();
            assert_eq!(owners.len(), 1, "{key}");
            per_shard[owners[0]] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 150), "uneven: {per_shard:?}");
        // Stable across versions and machines: pinned.
        assert!(Shard { k: 1, n: 1 }.owns("anything"));
        let pinned: Vec<u64> = ["example.com", "example.org", "a.test"]
            .iter()
            .map(|key| (1..=4).find(|&k| Shard { k, n: 4 }.owns(key)).unwrap())
            .collect();
        // Computed independently (Python hashlib): sha256(key)[..8] big-endian % 4 + 1.
        assert_eq!(pinned, [2, 3, 3]);
    }

    /// One retry rule: the code's list, `--help` and the README say the same.
    #[test]
    fn help_and_readme_name_the_retried_statuses() {
        let list: Vec<String> = crate::fetch::RETRIED_STATUSES
            .iter()
            .map(u16::to_string)
            .collect();
        let help = Cli::command().render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(help.contains(&format!("HTTP {}", list.join("/"))), "{help}");
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&list.join("/")),
            "README does not list {}",
            list.join("/")
        );
    }
}
