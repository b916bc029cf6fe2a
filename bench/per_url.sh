#!/bin/sh
# The shell user's anchor for --exec: one curl and one Python per URL, as
# `parallel -j C sh bench/per_url.sh :::: list` runs it.
curl -s "$1" | python3 -c 'import sys, json; sys.stdin.read(); print(json.dumps({"i": 0}))'
