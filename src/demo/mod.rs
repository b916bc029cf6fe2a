//! `trawl demo`: start the local server of `server.rs` (endpoints in
//! `endpoints.rs`) and fetch a generated list from it with the user's options.
//! The integration tests start the same server on a random port.

mod endpoints;
mod server;
mod stats;

use std::sync::Arc;

use crate::config::Config;
use crate::input::InputSpec;
use crate::output::Progress;
use crate::{Outcome, Shutdown};

pub use endpoints::{binary_response, noise};
pub use server::Server;
pub use stats::{ServerStats, SlidingWindow};

/// The demo's input list: every kind of endpoint, plus lines that are not URLs.
pub fn demo_list(server: &Server, closed_port: u16) -> String {
    let mut lines = vec![
        "# trawl demo: a generated list against a local server".to_owned(),
        String::new(),
    ];
    lines.extend((0..8).map(|i| server.url(&format!("/fast?n={i}"))));
    lines.extend((1..=5).map(|i| server.url(&format!("/json/{i}"))));
    lines.extend((1..=5).map(|i| server.url(&format!("/html/{i}"))));
    lines.push(server.url("/latin1"));
    lines.extend((1..=3).map(|i| server.url(&format!("/slow?delay={}", 200 * i))));
    lines.push(server.url("/redirect/3"));
    lines.push(server.url("/loop"));
    lines.push(server.url("/status/404"));
    lines.push(server.url("/status/500"));
    lines.extend((1..=2).map(|i| server.url(&format!("/flaky/demo{i}?fail=1"))));
    lines.push(server.url("/retry-after/demo?secs=1"));
    lines.push(server.url("/bytes/4096"));
    lines.push(server.url("/gzip-bomb"));
    lines.push(server.url("/truncated"));
    lines.push(server.raw_url("/reset"));
    lines.push(server.raw_url("/garbage"));
    lines.push(format!("http://127.0.0.1:{closed_port}/nobody-listens"));
    lines.push(format!(
        r#"{{"url": "{}", "method": "POST", "headers": {{"Content-Type": "application/json"}}, "body": "{{\"hello\": \"trawl\"}}", "id": "post-1"}}"#,
        server.url("/echo")
    ));
    lines.push("not a url".to_owned());
    lines.push("ftp://example.com/file.txt".to_owned());
    lines.join("\n") + "\n"
}

/// `trawl demo`: start the server, fetch the generated list with the given options.
pub async fn run(
    cfg: Arc<Config>,
    progress: Progress,
    shutdown: Arc<Shutdown>,
) -> anyhow::Result<Outcome> {
    let server = Server::start().await?;
    let closed_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let text = demo_list(&server, closed_port);
    let count = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    let mut cfg = (*cfg).clone();
    cfg.inputs = vec![InputSpec::Text {
        name: "demo list".into(),
        text,
    }];
    if !cfg.ui.quiet {
        progress.eprintln(&format!(
            "trawl demo: serving on http://{} (faults on {}); fetching {count} inputs.\n\
             trawl demo: some fail on purpose (404, 500, redirect loop, gzip bomb, reset, bad lines).\n\
             trawl demo: try `trawl demo | jq -c '{{index, url, status, title, error: .error.kind}}'`",
            server.addr, server.raw_addr
        ));
    }
    crate::run(Arc::new(cfg), progress, shutdown).await
}
