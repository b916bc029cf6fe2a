#!/bin/sh
# A trawl --exec worker in one line of jq: each body's URL, status and length.
# -c: one line per answer; --unbuffered: each answer goes out at once.
#
#   trawl --exec 'sh examples/exec/jq-worker.sh' urls.txt
exec jq -c --unbuffered '{url, status, length: ((.body // "") | length)}'
