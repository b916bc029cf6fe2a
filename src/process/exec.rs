//! `--exec CMD`: the user's own processing stage, a pool of long-lived worker
//! processes (`sh -c CMD`). Each accepted body goes to a free worker as one
//! JSON line on its stdin; the one line it writes back on stdout becomes the
//! record's `exec`.
//!
//! The pipes are async child I/O, one task per worker on the runtime: a wait
//! for a slow worker holds no thread, `--exec-timeout` is a timer, and a hung
//! worker is killed from the same task. The lanes hand a request over and wait
//! for its answer; what they wait with (the body, its share of the lanes'
//! budget) stays counted, so a slow worker slows fetching, never grows memory.
//!
//! Workers run in a process group of their own, so a terminal's Ctrl-C reaches
//! trawl alone, which then ends them in order: EOF on stdin, a grace period,
//! SIGTERM, SIGKILL. If trawl itself is killed they see EOF on stdin.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::failure::Failure;

/// What `--exec` runs, and how.
#[derive(Debug, Clone)]
pub(crate) struct ExecSettings {
    pub(crate) command: String,
    pub(crate) workers: usize,
    pub(crate) timeout: Duration,
    /// `--exec-input headers`: no body is sent.
    pub(crate) headers_only: bool,
}

/// How long a worker that just started is watched for an exit, before the
/// run starts: a missing program or a crash at start is a usage error.
const START_WATCH: Duration = Duration::from_millis(300);
/// Between EOF on a worker's stdin and SIGTERM, at the end of a run.
const GRACE: Duration = Duration::from_secs(2);
/// The longest answer line: a worker that writes more without a newline is
/// out of step, and restarted.
const MAX_ANSWER: usize = 64 << 20;
/// Stderr lines are cut at this length (a worker may write without newlines).
const MAX_STDERR_LINE: usize = 4096;

/// One request for a worker, and where its answer goes.
struct Ask {
    line: Vec<u8>,
    reply: oneshot::Sender<Result<Value, Failure>>,
}

/// The running pool.
pub(crate) struct Pool {
    asks: mpsc::Sender<Ask>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    restarts: Arc<AtomicU64>,
}

/// A worker process and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Pool {
    /// Start the workers; Err (with the worker's stderr) when one cannot
    /// start or exits at once.
    pub(crate) async fn start(settings: &ExecSettings) -> anyhow::Result<Pool> {
        let mut workers = Vec::with_capacity(settings.workers);
        for n in 1..=settings.workers {
            workers.push(spawn(&settings.command, n, false).map_err(|e| {
                anyhow::anyhow!("--exec: cannot start '{}': {e}", settings.command)
            })?);
        }
        tokio::time::sleep(START_WATCH).await;
        for (i, w) in workers.iter_mut().enumerate() {
            if let Ok(Some(status)) = w.child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = w.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err).await;
                }
                let err = err.trim_end();
                anyhow::bail!(
                    "--exec: worker {} ('{}') ended at start ({}){}{}",
                    i + 1,
                    settings.command,
                    exit_text(status),
                    if err.is_empty() {
                        ""
                    } else {
                        "; its stderr:\n"
                    },
                    err
                );
            }
        }
        let (asks, rx) = mpsc::channel::<Ask>(settings.workers);
        let rx = Arc::new(Mutex::new(rx));
        let restarts = Arc::new(AtomicU64::new(0));
        let tasks = workers
            .into_iter()
            .enumerate()
            .map(|(i, mut w)| {
                forward_stderr(&mut w.child, i + 1);
                let ctx = Ctx {
                    n: i + 1,
                    settings: settings.clone(),
                    asks: rx.clone(),
                    restarts: restarts.clone(),
                };
                tokio::spawn(ctx.serve(w))
            })
            .collect();
        Ok(Pool {
            asks,
            tasks,
            restarts,
        })
    }

    /// Hand `line` to the next free worker, from a processing lane (blocking
    /// while every worker is busy); the answer comes on the receiver.
    pub(crate) fn ask(&self, line: Vec<u8>) -> oneshot::Receiver<Result<Value, Failure>> {
        let (reply, answer) = oneshot::channel();
        if let Err(e) = self.asks.blocking_send(Ask { line, reply }) {
            let _ = e.0.reply.send(Err(Failure::Process(
                "--exec: the workers were stopped".into(),
            )));
        }
        answer
    }

    /// Workers restarted so far (after a crash, garbage or a timeout).
    pub(crate) fn restarts(&self) -> Arc<AtomicU64> {
        self.restarts.clone()
    }

    /// End the pool: each worker gets EOF, then SIGTERM after [`GRACE`], then
    /// SIGKILL; every one is waited for (no zombie is left).
    pub(crate) async fn close(self) {
        drop(self.asks);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What a worker's task knows.
struct Ctx {
    n: usize,
    settings: ExecSettings,
    asks: Arc<Mutex<mpsc::Receiver<Ask>>>,
    restarts: Arc<AtomicU64>,
}

impl Ctx {
    /// Serve asks until the pool closes, restarting the worker when it fails.
    async fn serve(self, first: Worker) {
        let mut worker = Some(first);
        loop {
            let ask = { self.asks.lock().await.recv().await };
            let Some(ask) = ask else { break };
            let mut w = match worker.take() {
                Some(w) => w,
                None => match self.restart() {
                    Ok(w) => w,
                    Err(e) => {
                        let why = format!("--exec: worker {} cannot be restarted: {e}", self.n);
                        let _ = ask.reply.send(Err(Failure::Process(why)));
                        continue;
                    }
                },
            };
            let mut answer = self.exchange(&mut w, &ask.line).await;
            if answer.as_ref().is_err_and(|e| e.is_empty()) {
                // It wrote a line nobody asked for (two for an earlier input, or
                // output at start): out of step, so this input goes to a fresh one.
                tracing::warn!(
                    "--exec worker {}: it wrote a line before it was sent this input (two lines for an earlier one, or output at start); restarted",
                    self.n
                );
                let _ = w.child.kill().await;
                match self.restart() {
                    Ok(fresh) => {
                        w = fresh;
                        answer = self.exchange(&mut w, &ask.line).await;
                    }
                    Err(e) => answer = Err(format!("it cannot be restarted: {e}")),
                }
            }
            let answer = answer.map_err(|e| match e.is_empty() {
                true => "it writes a line before it is sent any input: a worker answers one line per input line, and nothing else on stdout".to_owned(),
                false => e,
            });
            match answer {
                Ok(value) => {
                    let _ = ask.reply.send(Ok(value));
                    worker = Some(w);
                }
                Err(why) => {
                    let why = self.failed(w, why).await;
                    let _ = ask.reply.send(Err(Failure::Process(why)));
                }
            }
        }
        if let Some(w) = worker {
            end(w).await;
        }
    }

    fn restart(&self) -> std::io::Result<Worker> {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        let mut w = spawn(&self.settings.command, self.n, true)?;
        forward_stderr(&mut w.child, self.n);
        Ok(w)
    }

    /// Send one line, read one answer line within the timeout.
    async fn exchange(&self, w: &mut Worker, line: &[u8]) -> Result<Value, String> {
        // A line already waiting was not asked for: the worker is out of step.
        // Polled once, not under a zero timeout: a timer waits for the next
        // millisecond tick, which cost every round trip 1.2 ms.
        let waiting = futures_util::FutureExt::now_or_never(w.stdout.fill_buf());
        if let Some(Ok(buf)) = waiting
            && !buf.is_empty()
        {
            // Empty: out of step before anything was sent (see `serve`).
            return Err(String::new());
        }
        let sent = async {
            w.stdin.write_all(line).await?;
            w.stdin.write_all(b"\n").await?;
            w.stdin.flush().await
        };
        let timeout = self.settings.timeout;
        let answer = tokio::time::timeout(timeout, async {
            sent.await
                .map_err(|e| format!("its stdin is closed ({e})"))?;
            read_answer(&mut w.stdout).await
        })
        .await
        .map_err(|_| {
            format!(
                "no answer within {} (--exec-timeout)",
                humantime::format_duration(timeout)
            )
        })??;
        serde_json::from_slice(&answer).map_err(|e| {
            let start = String::from_utf8_lossy(&answer[..answer.len().min(80)]).into_owned();
            format!("it answered a line that is not JSON ({e}): {start:?}")
        })
    }

    /// A worker that failed: say why, with its exit status or signal when it
    /// ended by itself, and kill it if it still runs.
    async fn failed(&self, mut w: Worker, why: String) -> String {
        let own_end = tokio::time::timeout(Duration::from_millis(200), w.child.wait()).await;
        let status = match own_end {
            Ok(Ok(status)) => format!(" ({})", exit_text(status)),
            _ => {
                let _ = w.child.kill().await;
                String::new()
            }
        };
        let why = format!("--exec worker {}: {why}{status}; restarted", self.n);
        tracing::warn!("{why}");
        why
    }
}

/// One answer line (without its newline); Err when the worker's stdout ended.
async fn read_answer(stdout: &mut BufReader<ChildStdout>) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    let mut limited = (&mut *stdout).take(MAX_ANSWER as u64 + 1);
    let n = limited
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| format!("reading its stdout: {e}"))?;
    if n == 0 {
        return Err("it exited before answering".into());
    }
    if line.last() != Some(&b'\n') {
        return Err(match line.len() > MAX_ANSWER {
            true => format!("its answer is longer than {} MiB", MAX_ANSWER >> 20),
            false => "it exited in the middle of its answer".into(),
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

fn spawn(command: &str, n: usize, restart: bool) -> std::io::Result<Worker> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("TRAWL_WORKER", n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    if restart {
        tracing::info!("--exec: worker {n} restarted");
    }
    let stdin = child.stdin.take().expect("piped");
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    Ok(Worker {
        child,
        stdin,
        stdout,
    })
}

/// Each line a worker writes on stderr goes to trawl's stderr through the
/// logger (so it never tears the progress bar), after `exec worker N:`.
fn forward_stderr(child: &mut Child, n: usize) {
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(stderr_lines(stderr, n));
    }
}

async fn stderr_lines(stderr: impl AsyncRead + Unpin, n: usize) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_STDERR_LINE as u64);
        match limited.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                tracing::warn!("exec worker {n}: {}", text.trim_end());
            }
        }
    }
}

/// The end of a run: EOF, then SIGTERM after the grace period, then SIGKILL.
async fn end(mut w: Worker) {
    drop(w.stdin);
    if tokio::time::timeout(GRACE, w.child.wait()).await.is_ok() {
        return;
    }
    if let Some(pid) = w.child.id() {
        // SAFETY: kill(2) on our own child's pid, which we have not waited for.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    if tokio::time::timeout(GRACE, w.child.wait()).await.is_err() {
        let _ = w.child.kill().await;
    }
}

/// "exited with status 3", "was killed by signal 9".
fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("it exited with status {code}"),
        (None, Some(sig)) => format!("it was killed by signal {sig}"),
        _ => "it ended".into(),
    }
}

/// The line a worker is sent for `record` (an ok one): the response's facts,
/// its headers (a header sent more than once as an array of its values), the
/// built-in results already in the record, and the body unless
/// `--exec-input headers` (text when UTF-8, else base64 with
/// `"body_encoding": "base64"`, as the record's `body`).
pub(crate) fn request_line(
    record: &crate::output::Record,
    headers: Option<&reqwest::header::HeaderMap>,
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_owned(), v);
        }
    };
    put("index", record.index.into());
    put("url", record.url.clone().into());
    put(
        "final_url",
        record
            .final_url
            .clone()
            .or_else(|| record.url.clone())
            .into(),
    );
    put("status", record.status.into());
    put("headers", Value::Object(header_object(headers)));
    put("content_type", record.content_type.clone().into());
    for (k, v) in [
        ("sha256", record.sha256.clone().into()),
        ("blake3", record.blake3.clone().into()),
        ("title", record.title.clone().into()),
        ("saved", record.saved.clone().into()),
    ] {
        put(k, v);
    }
    if let Some(jq) = &record.jq {
        put("jq", jq.clone().into());
    }
    if let Some(select) = &record.select {
        put("select", select.clone().into());
    }
    if let Some(matches) = &record.matches {
        put("matches", matches.clone().into());
    }
    if let Some(body) = body {
        let (text, base64) = super::builtins::body_text(body);
        put("body", text.into());
        if base64 {
            put("body_encoding", "base64".into());
        }
    }
    serde_json::to_vec(&Value::Object(m)).expect("JSON values serialize")
}

fn header_object(headers: Option<&reqwest::header::HeaderMap>) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (name, value) in headers.into_iter().flatten() {
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match out.get_mut(name.as_str()) {
            None => {
                out.insert(name.to_string(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    out
}
