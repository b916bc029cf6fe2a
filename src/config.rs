//! The validated run configuration: `Config`, made once from the parsed
//! arguments (`cli.rs`), with the checks that span several flags. Reported like
//! clap errors (exit 2). It is made of each stage's own settings (`FetchSettings`,
//! `LimitSettings`, `ProcessSettings`, `OutputSettings`, `UiSettings`), defined
//! beside the stage: a stage sees its part, never the whole.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{self, HeaderMap};

use clap::CommandFactory;

use crate::archive::ArchiveSettings;
use crate::cli::{
    ArchiveArgs, Cli, Command, HeaderArg, OutputArgs, PolitenessArgs, ProcessArgs, RequestArgs,
    RunArgs, SchemaOf, TlsArgs, basic_auth, check_proxy, parse_header,
};
use crate::fetch::FetchSettings;
use crate::fetch::{ClientSettings, HttpVersions};
use crate::input::InputSpec;
use crate::input::Shard;
use crate::output::OutputSettings;
use crate::output::{Progress, ProgressMode, UiSettings};
use crate::politeness::LimitSettings;
use crate::process::ProcessSettings;
use crate::values::Threshold;

/// The validated run configuration: what is read, and each stage's settings.
/// The stages see only their own part.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) inputs: Vec<InputSpec>,
    pub(crate) shard: Option<Shard>,
    /// `--since`: the outputs of an earlier run.
    pub(crate) since: Vec<PathBuf>,
    pub(crate) limits: LimitSettings,
    pub(crate) fetch: FetchSettings,
    pub(crate) process: ProcessSettings,
    pub(crate) outputs: OutputSettings,
    /// `--warc`.
    pub(crate) archive: Option<ArchiveSettings>,
    pub(crate) ui: UiSettings,
    pub(crate) allow_failures: Threshold,
    /// Time requests in flight get to finish after Ctrl-C/SIGTERM.
    pub grace: Duration,
    /// How names are looked up when not pinned (the system's resolver unless
    /// replaced with [`Config::with_lookup`]).
    pub(crate) lookup: Option<Lookup>,
}

/// A replacement resolver (see [`Config::with_lookup`]).
#[derive(Clone)]
pub(crate) struct Lookup(pub(crate) crate::fetch::LookupFn);

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup(..)")
    }
}

impl Config {
    /// Look names up with `lookup` (host name -> addresses) instead of the
    /// system's resolver: for tests that must never ask the network's
    /// nameserver, and for callers with their own name service.
    pub fn with_lookup<F>(mut self, lookup: F) -> Config
    where
        F: Fn(&str) -> std::io::Result<Vec<std::net::IpAddr>> + Send + Sync + 'static,
    {
        let lookup = Arc::new(lookup);
        self.lookup = Some(Lookup(Arc::new(move |host: String| {
            let answer = lookup(&host);
            Box::pin(async move { answer })
        })));
        self
    }

    /// `-q`: nothing on stderr but errors.
    pub fn quiet(&self) -> bool {
        self.ui.quiet
    }

    /// The progress display that `--progress`, `--no-progress` and `-q` ask for.
    pub fn progress(&self) -> Progress {
        Progress::new(&self.ui)
    }

    /// Install the log subscriber as `-q`, `-v` and `--log-format` say, drawn
    /// through `progress` so that log lines and the bar never tear each other.
    pub fn init_logging(&self, progress: &Progress) {
        crate::output::init_logging(&self.ui, progress);
    }
}

/// A value that failed validation, reported like a clap error (exit 2).
pub(crate) fn usage_error(message: impl std::fmt::Display) -> clap::Error {
    Cli::command().error(clap::error::ErrorKind::ValueValidation, message)
}

/// A `--shard auto` error: the message alone (the usage block says nothing
/// about job engines), with the variables that were read and what they held.
fn engine_error(why: String, read: &[String]) -> clap::Error {
    let read = match read.is_empty() {
        true => String::new(),
        false => format!("\n  variables read: {}", read.join(", ")),
    };
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("{why}{read}\n"),
    )
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
        let RunArgs {
            politeness,
            request,
            tls,
            process,
            output,
            archive,
        } = self;
        let mut fetch = request.into_settings(tls, &politeness)?;
        let limits = politeness.into_settings()?;
        let process = process.into_settings()?;
        // `--exec` workers are sent the response's headers.
        fetch.keep_headers = process.exec.is_some();
        let (outputs, ui) = output.settings()?;
        let archive = archive.into_settings(&fetch, output.resume)?;
        // The wire form is kept: the clients leave bodies encoded.
        fetch.wire = archive.is_some();
        fetch.client.decode = archive.is_none();
        let read = std::cell::RefCell::new(Vec::new());
        let shard = output
            .shard
            .map(|arg| {
                arg.resolve(output.shard_by, |name| {
                    let value = std::env::var(name).ok();
                    read.borrow_mut().push(match &value {
                        Some(v) => format!("{name}={v}"),
                        None => format!("{name} unset"),
                    });
                    value
                })
            })
            .transpose()
            .map_err(|why| engine_error(why, &read.borrow()))?;
        Ok(Config {
            inputs,
            shard,
            since: output.since,
            limits,
            fetch,
            process,
            outputs,
            archive,
            ui,
            allow_failures: output.allow_failures.unwrap_or(Threshold::Count(0)),
            grace: Duration::from_secs(3),
            lookup: None,
        })
    }
}

/// A count flag that must be at least 1 when given.
fn at_least_one<N>(n: Option<N>, flag: &str) -> Result<Option<N>, clap::Error>
where
    N: Default + PartialEq,
{
    match n {
        Some(n) if n == N::default() => Err(usage_error(format!("--{flag} must be at least 1"))),
        n => Ok(n),
    }
}

impl PolitenessArgs {
    fn into_settings(self) -> Result<LimitSettings, clap::Error> {
        let concurrency = NonZeroUsize::new(self.concurrency)
            .ok_or_else(|| usage_error("--concurrency must be at least 1"))?;
        Ok(LimitSettings {
            concurrency,
            per_host: at_least_one(self.per_host, "per-host")?
                .map(|n| NonZeroUsize::new(n).expect("checked")),
            rate: self.rate,
            host_rate: self.host_rate,
            circuit_breaker: at_least_one(self.circuit_breaker, "circuit-breaker")?
                .map(|n| NonZeroU32::new(n).expect("checked")),
            auto_throttle: self.auto_throttle,
        })
    }
}

impl RequestArgs {
    /// The fetch settings; retries and robots come from the politeness group.
    fn into_settings(
        self,
        tls: TlsArgs,
        politeness: &PolitenessArgs,
    ) -> Result<FetchSettings, clap::Error> {
        let method = self
            .method
            .as_deref()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| usage_error(format!("invalid --method '{m}'")))
            })
            .transpose()?;
        let mut headers = HeaderMap::new();
        let mut removed = Vec::new();
        for raw in &self.headers {
            match parse_header(raw).map_err(usage_error)? {
                HeaderArg::Set(name, value) => {
                    headers.append(name, value);
                }
                HeaderArg::Remove(name) if name == header::ACCEPT_ENCODING => {
                    return Err(usage_error(
                        "-H 'Accept-Encoding:': trawl decodes gzip, br, zstd and deflate and \
                         always says so; -H 'Accept-Encoding: identity' asks for no encoding",
                    ));
                }
                HeaderArg::Remove(name) => {
                    headers.remove(&name);
                    removed.push(name);
                }
            }
        }
        let form = self.data.is_some();
        let data = match self.data.or(self.data_binary) {
            None => None,
            Some(d) => Some(match d.strip_prefix('@') {
                Some(path) => {
                    let mut bytes = std::fs::read(path).map_err(|e| {
                        usage_error(format!("cannot read --data file '{path}': {e}"))
                    })?;
                    // curl's -d @FILE drops line breaks; --data-binary keeps every byte.
                    if form {
                        bytes.retain(|&b| b != b'\r' && b != b'\n');
                    }
                    bytes
                }
                None => d.into_bytes(),
            }),
        };
        if let Some(proxy) = &self.proxy {
            check_proxy(proxy)
                .map_err(|why| usage_error(format!("invalid --proxy '{proxy}': {why}")))?;
        }
        if let Some(user) = &tls.user {
            basic_auth(&mut headers, user).map_err(usage_error)?;
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(usage_error(
                "--timeout and --connect-timeout must be above zero",
            ));
        }
        Ok(FetchSettings {
            client: ClientSettings {
                // `-H 'User-Agent:'` sends none, as curl's does.
                user_agent: match removed.contains(&header::USER_AGENT) {
                    true => String::new(),
                    false => self
                        .user_agent
                        .unwrap_or_else(|| concat!("trawl/", env!("CARGO_PKG_VERSION")).to_owned()),
                },
                connect_timeout: self.connect_timeout,
                insecure: tls.insecure,
                proxy: self.proxy,
                resolve: self.resolve,
                tls: tls.load()?,
                versions: tls.versions(),
                decode: true,
            },
            retries: politeness.retries,
            max_retry_wait: politeness.max_retry_wait,
            method,
            headers,
            data,
            timeout: self.timeout,
            max_redirects: self.max_redirects,
            max_body: self.max_body,
            ok_status: self.ok_status,
            robots: politeness.robots,
            robots_agent: politeness.robots_agent.clone(),
            retry_all_methods: politeness.retry_all_methods,
            follow: !self.no_follow,
            form_data: form && !removed.contains(&header::CONTENT_TYPE),
            keep_headers: false,
            wire: false,
        })
    }
}

impl ArchiveArgs {
    fn into_settings(
        self,
        fetch: &FetchSettings,
        resume: bool,
    ) -> Result<Option<ArchiveSettings>, clap::Error> {
        let Some(path) = self.warc else {
            return Ok(None);
        };
        if ArchiveSettings::parts(&path).is_none() {
            return Err(usage_error(format!(
                "--warc '{}' must end in .warc.gz (or .warc, uncompressed)",
                path.display()
            )));
        }
        if self.warc_max_size == Some(0) {
            return Err(usage_error("--warc-max-size must be above zero"));
        }
        let info =
            vec![
            ("software".to_owned(), concat!("trawl/", env!("CARGO_PKG_VERSION")).to_owned()),
            ("format".to_owned(), "WARC File Format 1.1".to_owned()),
            (
                "conformsTo".to_owned(),
                "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
                    .to_owned(),
            ),
            ("http-header-user-agent".to_owned(), fetch.client.user_agent.clone()),
            (
                "robots".to_owned(),
                match fetch.robots {
                    true => "obey",
                    false => "ignore",
                }
                .to_owned(),
            ),
        ];
        Ok(Some(ArchiveSettings {
            path,
            max_size: self.warc_max_size,
            cdxj: self.cdxj,
            resume,
            info,
        }))
    }
}

impl TlsArgs {
    fn load(&self) -> Result<crate::fetch::Tls, clap::Error> {
        crate::fetch::Tls::load(
            self.cacert.as_deref(),
            self.cert.as_deref(),
            self.key.as_deref(),
        )
        .map_err(usage_error)
    }

    fn versions(&self) -> HttpVersions {
        match (self.http1_1, self.http2_prior_knowledge) {
            (true, _) => HttpVersions::Http1Only,
            (false, true) => HttpVersions::H2cPriorKnowledge,
            (false, false) => HttpVersions::Negotiate,
        }
    }
}

impl ProcessArgs {
    fn into_settings(self) -> Result<ProcessSettings, clap::Error> {
        Ok(ProcessSettings {
            hash: self.hash,
            title: self.title,
            body: self.body,
            jq: compiled(&self.jq, crate::process::Jq::parse)?,
            regex: compiled(&self.regex, crate::process::Pattern::parse)?,
            select: compiled(&self.select, crate::process::Select::parse)?,
            save: self.save,
            exec: self.exec.map(|command| crate::process::ExecSettings {
                command,
                workers: self
                    .exec_workers
                    .map_or_else(crate::process::cores, |n| n as usize),
                timeout: self.exec_timeout,
                headers_only: self.exec_input == crate::cli::ExecInput::Headers,
            }),
        })
    }
}

impl OutputArgs {
    /// The writer's and stderr's settings; the run-level flags stay for `into_config`.
    fn settings(&self) -> Result<(OutputSettings, UiSettings), clap::Error> {
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
        let outputs = OutputSettings {
            main: self.output.clone(),
            errors: self.errors.clone(),
            summary: self.summary.clone(),
            host_stats: self.host_stats.clone(),
            ordered: self.ordered,
            resume: self.resume,
        };
        let ui = UiSettings {
            progress,
            quiet: self.quiet,
            verbose: self.verbose,
            log_format: self.log_format,
        };
        Ok((outputs, ui))
    }
}

/// What `main` should do after parsing.
pub enum Action {
    Run(Config),
    Demo(Config),
    /// Print this text to stdout: a completion script, the man page or a schema.
    Print(Vec<u8>),
    /// `trawl merge`.
    Merge(crate::runs::Merge),
}

impl Cli {
    pub fn into_action(self) -> Result<Action, clap::Error> {
        match self.command {
            Some(Command::Demo { mut run }) => {
                // The demo fails some inputs on purpose; that alone is no reason to exit 1.
                run.process.title = true;
                run.output.allow_failures = run
                    .output
                    .allow_failures
                    .or(Some(Threshold::Percent(100.0)));
                Ok(Action::Demo((*run).into_config(Vec::new())?))
            }
            Some(Command::Completions { shell }) => {
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "trawl", &mut out);
                Ok(Action::Print(out))
            }
            Some(Command::Merge {
                parts,
                output,
                summary,
                allow_failures,
                partial,
            }) => Ok(Action::Merge(crate::runs::Merge {
                parts,
                output,
                summary,
                allow_failures,
                partial,
            })),
            Some(Command::Man) => {
                let mut out = Vec::new();
                clap_mangen::Man::new(Cli::command())
                    .render(&mut out)
                    .expect("rendering into memory");
                Ok(Action::Print(out))
            }
            Some(Command::Schema { of }) => {
                let schema = match of {
                    SchemaOf::Record => crate::output::record_schema(),
                    SchemaOf::Summary => crate::output::summary_schema(),
                };
                let mut out = serde_json::to_vec_pretty(&schema).expect("a schema is JSON");
                out.push(b'\n');
                Ok(Action::Print(out))
            }
            None => {
                let inputs = if self.inputs.is_empty() {
                    vec![InputSpec::Stdin]
                } else {
                    self.inputs.into_iter().map(input_spec).collect()
                };
                Ok(Action::Run(self.run.into_config(inputs)?))
            }
        }
    }
}

/// An input argument: `-` is stdin, an http:// or https:// URL is fetched
/// itself, anything else is a file.
fn input_spec(arg: PathBuf) -> InputSpec {
    if arg.as_os_str() == "-" {
        return InputSpec::Stdin;
    }
    match arg.to_str() {
        Some(text) if is_url_argument(text) => InputSpec::Url(text.to_owned()),
        _ => InputSpec::File(arg),
    }
}

/// Whether an argument is a URL rather than a file name.
fn is_url_argument(arg: &str) -> bool {
    let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_curls_do() {
        let set = |raw: &str| match parse_header(raw).unwrap() {
            HeaderArg::Set(n, v) => (n.as_str().to_owned(), v.to_str().unwrap().to_owned()),
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(set("X-Token:  abc "), ("x-token".into(), "abc".into()));
        assert_eq!(set("X-Empty;"), ("x-empty".into(), String::new()));
        assert_eq!(set("X-Semi: a;"), ("x-semi".into(), "a;".into()));
        assert!(matches!(parse_header("Accept:").unwrap(), HeaderArg::Remove(n) if n == "accept"));
        assert!(matches!(
            parse_header("Accept:  ").unwrap(),
            HeaderArg::Remove(_)
        ));
        assert!(parse_header("no colon").is_err());
    }

    #[test]
    fn url_arguments_are_fetched_and_the_rest_are_files() {
        for url in ["https://example.com/", "http://x", "HTTPS://EXAMPLE.COM"] {
            assert!(matches!(input_spec(url.into()), InputSpec::Url(u) if u == url));
        }
        for file in [
            "urls.txt",
            "example.com",
            "http:/x",
            "./https://x",
            "https:",
        ] {
            assert!(
                matches!(input_spec(file.into()), InputSpec::File(_)),
                "{file}"
            );
        }
        assert!(matches!(input_spec("-".into()), InputSpec::Stdin));
    }

    #[test]
    fn basic_auth_is_a_header_unless_one_is_given() {
        let mut headers = HeaderMap::new();
        basic_auth(&mut headers, "aladdin:opensesame").unwrap();
        assert_eq!(headers["authorization"], "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
        let mut given = HeaderMap::new();
        given.insert(
            "authorization",
            reqwest::header::HeaderValue::from_static("Bearer t"),
        );
        basic_auth(&mut given, "a:b").unwrap();
        assert_eq!(given["authorization"], "Bearer t");
        assert!(basic_auth(&mut HeaderMap::new(), "nocolon").is_err());
        basic_auth(&mut headers, "user:").unwrap();
    }
}
