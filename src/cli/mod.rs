//! Command-line surface: the raw clap `Cli` (its doc comments are the help text)
//! and the parsers of single values (rates, durations, sizes, statuses, shards).
//! `config.rs` turns it into the validated `Config` the stages share.

mod requests;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub(crate) use requests::{HeaderArg, bad_proxy_env, basic_auth, check_proxy, parse_header};

use crate::input::{ShardArg, ShardBy};
use crate::values::{
    HashKind, LogFormat, Rate, StatusSet, Threshold, parse_duration, parse_rate, parse_size_arg,
    parse_status_set, parse_threshold, parse_token,
};

const EXAMPLES: &str = "\
Examples:
  trawl urls.txt > results.jsonl
  trawl https://example.com/ | jq .            # URL arguments work too, as in curl
  cat urls.txt | trawl -c 200 --rate 50/s --errors failed.jsonl | jq -r 'select(.status==200).url'
  trawl failed.jsonl -o retry.jsonl        # re-feed failures (records are valid input)
  trawl --title --ordered urls.txt | jq -r '[.url, .title] | @tsv'
  trawl demo | jq -c '{url, status, title}' # offline tour against an embedded server

Input: one URL per line (blank lines and #comments skipped), or a JSON request object
{\"url\": ..., \"method\": ..., \"headers\": {...}, \"body\": ..., \"id\": ...} per line.

Exit codes: 0 all ok, 1 failures beyond --allow-failures, 2 usage or fatal error,
130 interrupted (143 on SIGTERM).";

/// `trawl --version`: the version and the CPU-dependent choice (the SHA-256 kernel
/// for bodies hashed together, and the group measured for it), which benchmark
/// results record. clap builds this text on every run, so the measurement (about
/// a millisecond) is made here only when `--version` is asked for; a run makes
/// it in its lanes, when it hashes with SHA-256.
fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let asked = std::env::args_os().any(|a| a == "--version" || a == "-V");
        let kernel = match asked {
            true => crate::process::kernel(),
            false => "(measured with --version)".to_owned(),
        };
        format!(
            "{}\nsha256 of similar bodies: {kernel}",
            env!("CARGO_PKG_VERSION"),
        )
    })
}

/// Fetch lists of URLs concurrently and politely; one JSON line per input.
#[derive(Debug, Parser)]
#[command(name = "trawl", version, long_version = long_version(), after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Input files, read line by line as a stream; `-` or none means stdin. An
    /// argument that starts with http:// or https:// is itself a URL to fetch.
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
        run: Box<RunArgs>,
    },
    /// Print a shell completion script to stdout.
    ///
    /// bash: `trawl completions bash > ~/.local/share/bash-completion/completions/trawl`;
    /// zsh: into a directory on $fpath as `_trawl`; fish:
    /// `~/.config/fish/completions/trawl.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, made from the same definitions as --help.
    ///
    /// `trawl man > ~/.local/share/man/man1/trawl.1`, then `man trawl`.
    Man,
    /// Merge the outputs of a list's shares (--shard ... -o PART) into one, in
    /// input order, and prove it complete.
    ///
    /// Keeps one record per index (a final record beats `cancelled`, a later
    /// part beats an earlier one), checks every share's PART.share.json, and
    /// exits 1 naming missing shares and index ranges. --errors files may be
    /// given as parts too.
    Merge {
        /// The shares' -o files (and --errors files).
        #[arg(value_name = "PART", required = true)]
        parts: Vec<PathBuf>,
        /// Write the merged records here instead of stdout.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Write the merged run summary (JSON) here.
        #[arg(long, value_name = "PATH")]
        summary: Option<PathBuf>,
        /// Failures tolerated over the merged records before the exit code
        /// becomes 1: a count or a percentage (5%), as for a run [default: any].
        #[arg(long, value_name = "N|P%", value_parser = parse_threshold)]
        allow_failures: Option<Threshold>,
        /// Write -o and --summary even when the merge is incomplete (the
        /// summary then says "partial": true); without it they are written only
        /// when every index has a final record.
        #[arg(long)]
        partial: bool,
    },
    /// Print the JSON Schema (draft 2020-12) of an output record, or of the
    /// --summary file.
    Schema {
        #[arg(value_enum, default_value_t = SchemaOf::Record)]
        of: SchemaOf,
    },
}

/// What `trawl schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaOf {
    /// One line of the output (`-o`, `--errors`, stdout).
    Record,
    /// The `--summary` file.
    Summary,
}

/// Options shared by a normal run and `trawl demo`: one group per help heading,
/// each converted into the settings of its stage (`config.rs`).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub politeness: PolitenessArgs,
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

/// WARC output: every exchange as received, for archive tools.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Archiving")]
pub struct ArchiveArgs {
    /// Write every HTTP exchange (redirects and robots.txt included) as WARC
    /// 1.1 records to PATH (ending in .warc.gz, or .warc uncompressed); named
    /// PATH.open until closed. Each record gains a "warc" pointer.
    #[arg(long, value_name = "PATH")]
    pub warc: Option<PathBuf>,
    /// Start a new WARC file (NAME-00000.warc.gz, NAME-00001...) once one
    /// passes SIZE.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, requires = "warc")]
    pub warc_max_size: Option<u64>,
    /// Write a CDXJ index (NAME.cdxj) beside each WARC file.
    #[arg(long, requires = "warc")]
    pub cdxj: bool,
}

/// How hard each host and the whole run are pressed, and when to give up.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Concurrency and politeness")]
pub struct PolitenessArgs {
    /// Maximum requests in flight at once.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 50)]
    pub concurrency: usize,
    /// Maximum requests in flight per host.
    #[arg(long, value_name = "N")]
    pub per_host: Option<usize>,
    /// Global rate of request starts, spread evenly: 100, 100/s, 600/m, 5/15s.
    #[arg(short = 'r', long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<Rate>,
    /// Rate of request starts per host, spread evenly (same syntax as --rate).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub host_rate: Option<Rate>,
    /// Retries after connect errors, timeouts, resets, truncated bodies and
    /// HTTP 408/429/500/502/503/504 (never other statuses), with backoff.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// Also retry requests whose method is not idempotent (POST, PATCH, ...)
    /// after a timeout, a reset or a retried status; they may then run twice on
    /// the server. Without it they are sent again only when no connection was made.
    #[arg(long)]
    pub retry_all_methods: bool,
    /// Longest wait honoured from a Retry-After header or a rate-limit pause
    /// (longer ones are capped).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub max_retry_wait: Duration,
    /// Find each host's rate from its answers: start slow, double while it
    /// answers, halve on a 429/503 without Retry-After, a timeout or a reset,
    /// then stay just under the rate that was refused. Never above --host-rate.
    #[arg(long)]
    pub auto_throttle: bool,
    /// Obey each site's robots.txt (RFC 9309), matched by the -A product token
    /// (or --robots-agent): fetched once per origin through the same limits (its
    /// first 500 KiB), Crawl-delay caps the host's rate, a disallowed input or
    /// redirect hop is a robots_disallowed record and is never sent. A 4xx
    /// robots.txt allows all; an unreachable one (5xx, 429, network error, body
    /// not read whole, after --retries) disallows all for the run.
    #[arg(long)]
    pub robots: bool,
    /// The product token robots.txt is obeyed for, when -A is a browser-like
    /// string (`Mozilla/5.0 (compatible; XBot/1.0)`) [default: what -A starts with].
    #[arg(long, value_name = "TOKEN", requires = "robots", value_parser = parse_token)]
    pub robots_agent: Option<String>,
    /// After N consecutive transport failures to a host, fail its remaining inputs
    /// fast with `circuit_open`.
    #[arg(long, value_name = "N")]
    pub circuit_breaker: Option<u32>,
}

/// What is sent, and the limits of one attempt.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Requests")]
pub struct RequestArgs {
    /// HTTP method (default GET, or POST with --data).
    #[arg(short = 'X', long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Extra request header "Name: value"; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request body, sent as application/x-www-form-urlencoded unless a
    /// Content-Type is given; `@FILE` reads it from a file without its line
    /// breaks (as curl does). Implies POST unless -X is given.
    #[arg(short = 'd', long, value_name = "DATA")]
    pub data: Option<String>,
    /// Request body sent exactly as given (`@FILE`: the file's bytes), with no
    /// Content-Type of its own (curl's --data-binary). Implies POST unless -X is given.
    #[arg(long, value_name = "DATA", conflicts_with = "data")]
    pub data_binary: Option<String>,
    /// User-Agent header [default: trawl/VERSION].
    #[arg(short = 'A', long, value_name = "UA")]
    pub user_agent: Option<String>,
    /// Time limit for one attempt: connect, headers, all redirects and the whole body.
    #[arg(short = 't', long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Time limit for establishing a connection.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Redirects followed before failing with `too_many_redirects`.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: u32,
    /// Do not follow redirects (curl without -L): a 3xx is the record, with
    /// its `location`.
    #[arg(long, conflicts_with = "max_redirects")]
    pub no_follow: bool,
    /// Largest decoded body accepted (e.g. 500KB, 16MiB); larger fails with `body_too_large`.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size_arg)]
    pub max_body: u64,
    /// Resolve HOST at PORT to ADDR (comma-separated for several) without DNS,
    /// as curl does; TLS still checks the certificate against HOST. Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR", value_parser = crate::fetch::parse_pin)]
    pub resolve: Vec<crate::fetch::Pin>,
    /// Proxy URL for all requests (http://, https://, socks5:// or socks5h://,
    /// which resolves names at the proxy).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Statuses counted as ok: codes, ranges and classes, e.g. 200,204 or 200-299 or 2xx,3xx.
    #[arg(long, value_name = "LIST", default_value = "2xx,3xx", value_parser = parse_status_set)]
    pub ok_status: StatusSet,
}

/// Certificates, credentials and the HTTP versions spoken.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS, auth and HTTP versions")]
pub struct TlsArgs {
    /// Do not verify TLS certificates.
    #[arg(long)]
    pub insecure: bool,
    /// PEM file of CA certificates to trust in addition to the system store
    /// (a private or corporate CA).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for servers that demand one (mutual TLS). The
    /// file may hold the private key too; otherwise give --key.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of the --cert client certificate.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// HTTP basic auth for every request. Like an Authorization header, it is
    /// not sent on after a redirect that changes scheme, host or port; -H wins.
    #[arg(short = 'u', long, value_name = "USER:PASSWORD")]
    pub user: Option<String>,
    /// Speak HTTP/1.1 only, never HTTP/2.
    #[arg(long = "http1.1")]
    pub http1_1: bool,
    /// HTTP/2 without upgrade on http:// URLs (h2c); https:// still agrees on
    /// the protocol by ALPN.
    #[arg(long, conflicts_with = "http1_1")]
    pub http2_prior_knowledge: bool,
}

/// The work done on each accepted body.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Processing")]
pub struct ProcessArgs {
    /// Body hash written to the record.
    #[arg(long, value_enum, default_value_t = HashKind::Sha256)]
    pub hash: HashKind,
    /// Extract the HTML <title> (charset and entities decoded).
    #[arg(long)]
    pub title: bool,
    /// Include the body in the record: text when UTF-8, else base64.
    #[arg(long)]
    pub body: bool,
    /// Run a jq filter on each body parsed as JSON; its outputs become `jq` (a
    /// body that is not JSON, or a filter error, fails the record with `process`).
    #[arg(long, value_name = "FILTER")]
    pub jq: Option<String>,
    /// Every match of a regular expression in the body (its first capture group
    /// when it has one), as `matches`.
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,
    /// Text of the HTML elements matching a CSS selector, as `select`; with
    /// `SELECTOR@attr`, that attribute's values instead (e.g. 'a@href').
    #[arg(long, value_name = "CSS")]
    pub select: Option<String>,
    /// Save each accepted body to DIR/xx/SHA256 (named by content, never by the
    /// URL; identical bodies are stored once), as `saved`.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Your own processing: start CMD (through `sh -c`) as long-lived workers;
    /// each accepted body goes to one as a JSON line on stdin, and the line it
    /// answers on stdout becomes `exec` (see the README's "Your own processing").
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// How many --exec workers run side by side [default: the number of cores].
    #[arg(long, value_name = "N", requires = "exec", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub exec_workers: Option<u32>,
    /// How long a worker may take to answer one body; past it the record is a
    /// `process` failure and the worker is restarted.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, requires = "exec")]
    pub exec_timeout: Duration,
    /// What a worker is sent: `body` (the body and the response's facts) or
    /// `headers` (the facts alone, no body).
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = ExecInput::Body, requires = "exec")]
    pub exec_input: ExecInput,
}

/// `--exec-input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecInput {
    Body,
    Headers,
}

/// Where records go, what stderr shows, and how runs relate.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output and runs")]
pub struct OutputArgs {
    /// Write records to PATH instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write failure records to PATH instead of the main stream.
    #[arg(long, value_name = "PATH")]
    pub errors: Option<PathBuf>,
    /// Write records in input order (bounded reorder window).
    #[arg(long)]
    pub ordered: bool,
    /// Write a JSON run summary to PATH.
    #[arg(long, value_name = "PATH")]
    pub summary: Option<PathBuf>,
    /// Write one JSON line per host to PATH at the end (requests, failures by
    /// kind, retries, 429/503s, pauses, latency p50/p90, bytes), and name the
    /// slowest and most failing hosts in the summary.
    #[arg(long, value_name = "PATH")]
    pub host_stats: Option<PathBuf>,
    /// The -o (and --errors) file of an earlier run, repeatable: send
    /// conditional GETs from its ETag/Last-Modified, keep its body facts on a 304,
    /// and mark each record's "change": new, unchanged, changed or broken.
    #[arg(long, value_name = "PREV")]
    pub since: Vec<PathBuf>,
    /// Skip inputs that already have a final record in -o/--errors and append the
    /// rest; torn lines and `cancelled` records from a stopped run are dropped.
    /// Refuses (exit 2) outputs made from another list or share.
    #[arg(long, requires = "output")]
    pub resume: bool,
    /// Failures tolerated before the exit code becomes 1: a count or a percentage (5%)
    /// [default: 0; `trawl demo`: 100%]
    #[arg(long, value_name = "N|P%", value_parser = parse_threshold)]
    pub allow_failures: Option<Threshold>,
    /// Fetch only share K of N (1-based), split by host name: every URL of a host
    /// lands in the same share, and the split is the same on every machine.
    /// `auto` takes the share from the job engine (Kubernetes
    /// JOB_COMPLETION_INDEX with auto/N, Slurm array, Cloud Run, AWS Batch with
    /// auto/N). With -o, a PATH.share.json beside it lets `trawl merge` prove
    /// the shares complete.
    #[arg(long, value_name = "K/N|auto[/N]", value_parser = crate::input::parse_shard)]
    pub shard: Option<ShardArg>,
    /// What --shard keeps together: each host, or each registrable domain (from
    /// the built-in Public Suffix List: a.example.co.uk with b.example.co.uk).
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = ShardBy::Host)]
    pub shard_by: ShardBy,
    /// Show a progress bar on stderr (default: when stderr is a terminal).
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,
    /// Never show a progress bar.
    #[arg(long, overrides_with = "progress")]
    pub no_progress: bool,
    /// Quiet: no progress bar, no summary, errors only in logs.
    #[arg(short, long)]
    pub quiet: bool,
    /// More logs on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log line format on stderr.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
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
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&list.join("/")),
            "README does not list {}",
            list.join("/")
        );
    }
}
