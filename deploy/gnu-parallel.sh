#!/bin/sh
# Eight shares on one machine (or across hosts with parallel's -S), then the merge.
# {} is 1..8; each share writes part-K.jsonl and part-K.jsonl.share.json.
# Share runs exit 1 when failures pass --allow-failures; --halt never lets the
# others finish, and the merge then proves the list complete.
parallel --halt never -j 8 \
    trawl urls.txt --shard {}/8 -c 50 -q -o part-{}.jsonl ::: 1 2 3 4 5 6 7 8
trawl merge part-*.jsonl -o all.jsonl --summary summary.json
