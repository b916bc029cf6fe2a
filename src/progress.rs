//! stderr: the indicatif progress bar and the tracing log lines, glued so that a
//! log line suspends the bar and the two never tear each other. stdout never sees
//! any of it. The bar is hidden when stderr is not a terminal; there `--progress`
//! prints a plain line every 10 s instead (CI logs), and one at the end.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::limits::Limits;
use crate::values::LogFormat;

/// Whether the progress bar is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgressMode {
    Auto,
    Always,
    Never,
}

/// What stderr shows: the progress display and the log lines.
#[derive(Debug, Clone)]
pub(crate) struct UiSettings {
    pub(crate) progress: ProgressMode,
    /// `-q`: no summary, errors only in the log.
    pub(crate) quiet: bool,
    /// `-v` count.
    pub(crate) verbose: u8,
    pub(crate) log_format: LogFormat,
}

/// Handle to the progress display; cheap to clone, inert when hidden.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    state: Arc<State>,
    /// Plain progress lines (no terminal): the thread that prints them.
    plain: Option<Arc<Plain>>,
}

/// Plain progress lines on a stderr that is not a terminal.
struct Plain {
    finished: std::sync::Mutex<bool>,
    wake: std::sync::Condvar,
}

/// How often a plain progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

struct State {
    started: Instant,
    ok: AtomicU64,
    failed: AtomicU64,
    /// Records to come, once the input has been read to its end.
    total: OnceLock<u64>,
    limits: OnceLock<Arc<Limits>>,
    last_message: std::sync::Mutex<Instant>,
}

impl State {
    fn new() -> State {
        State {
            started: Instant::now(),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            total: OnceLock::new(),
            limits: OnceLock::new(),
            last_message: std::sync::Mutex::new(Instant::now()),
        }
    }
}

const REFRESH: Duration = Duration::from_millis(100);

impl State {
    /// `trawl: progress: 1200/5000 done (24%), 1190 ok, 10 failed, 412/s, eta 9s`:
    /// no escapes, for logs.
    fn plain_line(&self) -> String {
        let (ok, failed) = (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        let done = ok + failed;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let of = match self.total.get() {
            Some(&total) if total > 0 => {
                let left = total.saturating_sub(done) as f64;
                let eta = if rate > 0.0 {
                    format!(", eta {:.0}s", left / rate)
                } else {
                    String::new()
                };
                format!(
                    "{done}/{total} done ({:.0}%){eta}",
                    done as f64 * 100.0 / total as f64
                )
            }
            _ => format!("{done} done"),
        };
        format!(
            "trawl: progress: {of}, {ok} ok, {failed} failed, {rate:.0}/s, {:.0}s elapsed",
            secs
        )
    }
}

impl Progress {
    pub(crate) fn new(cfg: &UiSettings) -> Progress {
        let terminal = io::stderr().is_terminal();
        let (show, plain) = match cfg.progress {
            ProgressMode::Always => (terminal, !terminal),
            ProgressMode::Never => (false, false),
            ProgressMode::Auto => (terminal, false),
        };
        let state = Arc::new(State::new());
        let plain = plain.then(|| {
            let plain = Arc::new(Plain {
                finished: std::sync::Mutex::new(false),
                wake: std::sync::Condvar::new(),
            });
            let (p, state) = (plain.clone(), state.clone());
            std::thread::Builder::new()
                .name("trawl-progress".into())
                .spawn(move || {
                    let mut finished = p.finished.lock().expect("progress lock");
                    loop {
                        finished = p
                            .wake
                            .wait_timeout(finished, PLAIN_EVERY)
                            .expect("progress lock")
                            .0;
                        if *finished {
                            return;
                        }
                        eprintln!("{}", state.plain_line());
                    }
                })
                .expect("spawn progress thread");
            plain
        });
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} done [{elapsed_precise}] {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(REFRESH);
            bar
        });
        Progress { bar, state, plain }
    }

    /// A display that never draws (tests, demo internals).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            state: Arc::new(State::new()),
            plain: None,
        }
    }

    /// Show the in-flight count of these limits.
    pub fn watch(&self, limits: Arc<Limits>) {
        let _ = self.state.limits.set(limits);
    }

    /// The input has been read to its end: `total` records are coming.
    pub fn set_total(&self, total: u64) {
        let _ = self.state.total.set(total);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} eta {eta} {msg}",
                )
                .expect("valid template"),
            );
        }
    }

    /// One record was written.
    pub fn record(&self, ok: bool) {
        let counter = if ok {
            &self.state.ok
        } else {
            &self.state.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let Some(bar) = &self.bar else { return };
        bar.inc(1);
        let mut last = self.state.last_message.lock().expect("progress lock");
        if last.elapsed() >= REFRESH {
            *last = Instant::now();
            bar.set_message(self.message());
        }
    }

    fn message(&self) -> String {
        let in_flight = self.state.limits.get().map_or(0, |l| l.in_flight());
        let (ok, failed) = (
            self.state.ok.load(Ordering::Relaxed),
            self.state.failed.load(Ordering::Relaxed),
        );
        let secs = self.state.started.elapsed().as_secs_f64().max(0.001);
        let rate = (ok + failed) as f64 / secs;
        format!("{rate:.0}/s ok {ok} failed {failed} in flight {in_flight}")
    }

    pub fn finish(&self) {
        if let Some(plain) = &self.plain {
            let mut finished = plain.finished.lock().expect("progress lock");
            if !*finished {
                *finished = true;
                plain.wake.notify_all();
                eprintln!("{}", self.state.plain_line());
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_message(self.message());
            bar.finish_and_clear();
        }
    }

    /// Print a line on stderr without tearing the bar.
    pub fn eprintln(&self, text: &str) {
        let write = || {
            let mut err = io::stderr().lock();
            let _ = writeln!(err, "{text}");
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// Install the tracing subscriber: logs on stderr through the progress bar.
pub(crate) fn init_logging(cfg: &UiSettings, progress: &Progress) {
    let default = match (cfg.quiet, cfg.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,trawl=info",
        (false, 2) => "info,trawl=debug",
        _ => "debug,trawl=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let writer = LogWriter {
        bar: progress.bar.clone(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let result = match cfg.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(io::stderr().is_terminal()).try_init(),
    };
    // Already installed (a second run in the same process, e.g. tests): keep the first.
    let _ = result;
}

#[derive(Clone)]
struct LogWriter {
    bar: Option<ProgressBar>,
}

/// Writes one formatted log event to stderr, suspending the bar around it.
struct LogLine {
    bar: Option<ProgressBar>,
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let write = || io::stderr().lock().write_all(buf);
        match &self.bar {
            Some(bar) => bar.suspend(write)?,
            None => write()?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            bar: self.bar.clone(),
        }
    }
}
