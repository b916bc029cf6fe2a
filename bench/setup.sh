#!/usr/bin/env bash
# Install the benchmark's peers and tools on a Debian machine (needs root or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq curl time python3-pip parallel
python3 -m pip install --quiet aiohttp || python3 -m pip install --quiet --break-system-packages aiohttp
command -v oha >/dev/null || cargo install oha --locked
