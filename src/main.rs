//! The `trawl` binary: parse arguments, set up logging and the runtime, run, and map
//! the outcome to an exit code. Signals are turned into a graceful stop here.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use trawl::Action;
use trawl::Cli;
use trawl::Progress;
use trawl::Stop;
use trawl::{Exit, Shutdown};

/// mimalloc instead of the system allocator: malloc and free were a tenth of the
/// profile on small responses, and mimalloc beat glibc (and jemalloc) side by
/// side. Built with `no_thp`: transparent huge pages saved page faults but raised
/// peak memory on every list. The figures are in the README's Performance section.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let (cfg, demo) = match Cli::parse().into_action() {
        Ok(Action::Run(cfg)) => (cfg, false),
        Ok(Action::Demo(cfg)) => (cfg, true),
        Ok(Action::Print(text)) => return print(&text),
        Ok(Action::Merge(merge)) => return ExitCode::from(merge.run().code()),
        Err(e) => e.exit(),
    };
    let progress = cfg.progress();
    cfg.init_logging(&progress);
    // High --concurrency needs many sockets: lift the soft open-files limit to the hard one.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let exit = runtime.block_on(async move {
        let shutdown = Shutdown::new();
        let quiet = cfg.quiet();
        tokio::spawn(watch_signals(shutdown.clone(), progress.clone(), quiet));
        let cfg = Arc::new(cfg);
        let result = match demo {
            true => trawl::demo::run(cfg, progress, shutdown).await,
            false => trawl::run(cfg, progress, shutdown).await,
        };
        match result {
            Ok(outcome) => {
                if let Some(e) = &outcome.error {
                    eprintln!("trawl: error: {e:#}");
                }
                outcome.exit
            }
            Err(e) => {
                eprintln!("trawl: error: {e:#}");
                Exit::Fatal
            }
        }
    });
    // A blocking stdin read may still be pending; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(exit.code())
}

/// Write a generated text to stdout; a closed pipe (`| head`) ends quietly.
fn print(text: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("trawl: error: writing to stdout: {e}");
            ExitCode::from(Exit::Fatal.code())
        }
        _ => ExitCode::from(Exit::Ok.code()),
    }
}

/// First Ctrl-C or SIGTERM: graceful stop. A second one: exit at once.
async fn watch_signals(shutdown: Arc<Shutdown>, progress: Progress, quiet: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    loop {
        let (reason, code) = tokio::select! {
            _ = int.recv() => (Stop::Interrupted, 130),
            _ = term.recv() => (Stop::Terminated, 143),
        };
        if !shutdown.trigger(reason) {
            std::process::exit(code);
        }
        if !quiet {
            progress.eprintln(
                "trawl: stopping: letting requests in flight finish (again to quit at once)",
            );
        }
    }
}
