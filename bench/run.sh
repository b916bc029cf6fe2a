#!/usr/bin/env bash
# Benchmark trawl against curl --parallel, xargs -P + curl, asyncio+aiohttp and oha
# on a local server. Builds release, runs every scenario, writes a dated markdown
# table to bench/results/. Peers that are not installed are skipped with a note;
# bench/setup.sh installs them. Options: --quick (one run, smaller lists),
# --runs N, --only NAME[,NAME...], --against LABEL=BIN (another trawl binary beside
# trawl in every peer table, e.g. one built from an earlier commit).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin trawl --example bench_server
exec python3 bench/bench.py "$@"
