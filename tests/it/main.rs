//! The integration suite: one test binary. Every HTTP server it talks to is started
//! inside the test on 127.0.0.1 with a random port (`trawl::demo::Server`); nothing
//! here touches the public internet.

mod archive;
mod binary;
mod exec;
mod fetching;
mod fleet;
mod footguns;
mod http2;
mod inputs;
mod large;
mod local;
mod names;
mod outputs;
mod politeness;
mod props;
mod reliability;
mod robots;
mod semantics;
mod shell;
mod since;
mod support;
