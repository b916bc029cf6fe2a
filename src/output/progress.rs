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

use crate::politeness::Limits;
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
}

impl State {
    fn new() -> State {
        State {
            started: Instant::now(),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            total: OnceLock::new(),
            limits: OnceLock::new(),
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

/// What stderr can show: a live bar needs a terminal that is not `TERM=dumb`
/// (nor unset); colour needs that, and no `NO_COLOR` (no-color.org).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stderr {
    live: bool,
    colour: bool,
}

impl Stderr {
    fn of(terminal: bool, term: Option<&str>, no_color: Option<&str>) -> Stderr {
        let live = terminal && term.is_some_and(|t| !t.is_empty() && t != "dumb");
        Stderr {
            live,
            colour: live && no_color.is_none_or(str::is_empty),
        }
    }

    fn now() -> Stderr {
        let var = |name| std::env::var(name).ok();
        Stderr::of(
            io::stderr().is_terminal(),
            var("TERM").as_deref(),
            var("NO_COLOR").as_deref(),
        )
    }
}

impl State {
    /// `ok 1190 failed 10 412/s in flight 64`, read when the bar is drawn, so
    /// the counts and the position always agree.
    fn counts(&self) -> String {
        let in_flight = self.limits.get().map_or(0, |l| l.in_flight());
        let (ok, failed) = (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (ok + failed) as f64 / secs;
        format!("ok {ok} failed {failed} {rate:.0}/s in flight {in_flight}")
    }
}

/// The bar's look: finished records as its position, the counts drawn with it.
fn style(state: &Arc<State>, template: &str) -> ProgressStyle {
    let state = state.clone();
    ProgressStyle::with_template(template)
        .expect("valid template")
        .with_key(
            "counts",
            move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&state.counts());
            },
        )
}

impl Progress {
    pub(crate) fn new(cfg: &UiSettings) -> Progress {
        let terminal = Stderr::now().live;
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
            bar.set_style(style(
                &state,
                "{spinner} {pos} done [{elapsed_precise}] {counts}",
            ));
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
            bar.set_style(style(
                &self.state,
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} eta {eta} {counts}",
            ));
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
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
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
    // Dependencies' own log lines (rustls logs every failed certificate check
    // at error level: 10k bad hosts, 10k lines) only from -v on.
    let default = match (cfg.quiet, cfg.verbose) {
        (true, _) => "off,trawl=error",
        (false, 0) => "off,trawl=warn",
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
        LogFormat::Text => builder.with_ansi(Stderr::now().colour).try_init(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_bar_needs_a_real_terminal_and_colour_honours_no_color() {
        let live = |terminal, term, no_color| Stderr::of(terminal, term, no_color);
        assert_eq!(
            live(true, Some("xterm-256color"), None),
            Stderr {
                live: true,
                colour: true
            }
        );
        assert!(!live(true, Some("xterm"), Some("1")).colour);
        assert!(
            live(true, Some("xterm"), Some("")).colour,
            "empty NO_COLOR is unset"
        );
        for term in [Some("dumb"), Some(""), None] {
            assert_eq!(
                live(true, term, None),
                Stderr {
                    live: false,
                    colour: false
                },
                "{term:?}"
            );
        }
        assert!(!live(false, Some("xterm"), None).live);
    }

    #[test]
    fn the_counts_are_the_finished_records() {
        let progress = Progress::hidden();
        for ok in [true, true, false, true] {
            progress.record(ok);
        }
        let counts = progress.state.counts();
        assert!(counts.starts_with("ok 3 failed 1 "), "{counts}");
        assert!(progress.state.plain_line().contains("4 done"));
    }
}
