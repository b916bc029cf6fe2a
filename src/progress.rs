//! stderr: the indicatif progress bar and the tracing log lines, glued so that a
//! log line suspends the bar and the two never tear each other. stdout never sees
//! any of it. The bar is hidden when stderr is not a terminal (unless --progress).

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::{Config, LogFormat, ProgressMode};
use crate::limits::Limits;

/// Handle to the progress display; cheap to clone, inert when hidden.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    state: Arc<State>,
}

struct State {
    started: Instant,
    ok: AtomicU64,
    failed: AtomicU64,
    limits: OnceLock<Arc<Limits>>,
    last_message: std::sync::Mutex<Instant>,
}

impl State {
    fn new() -> State {
        State {
            started: Instant::now(),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            limits: OnceLock::new(),
            last_message: std::sync::Mutex::new(Instant::now()),
        }
    }
}

const REFRESH: Duration = Duration::from_millis(100);

impl Progress {
    pub fn new(cfg: &Config) -> Progress {
        let show = match cfg.progress {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => io::stderr().is_terminal(),
        };
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} done [{elapsed_precise}] {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(REFRESH);
            bar
        });
        Progress {
            bar,
            state: Arc::new(State::new()),
        }
    }

    /// A display that never draws (tests, demo internals).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            state: Arc::new(State::new()),
        }
    }

    /// Show the in-flight count of these limits.
    pub fn watch(&self, limits: Arc<Limits>) {
        let _ = self.state.limits.set(limits);
    }

    /// The input has been read to its end: `total` records are coming.
    pub fn set_total(&self, total: u64) {
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
pub fn init_logging(cfg: &Config, progress: &Progress) {
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
