#!/usr/bin/env python3
"""A trawl --exec worker (standard library only): for each body, its word
count and the five commonest words.

    trawl --exec 'python3 examples/exec/words.py' urls.txt

trawl sends one JSON line per accepted body on stdin and reads one JSON line
back on stdout: keep that order, flush after each answer, write anything
else to stderr, and exit when stdin ends.
"""
import collections
import json
import re
import sys

for line in sys.stdin:
    page = json.loads(line)
    text = page.get("body") or ""
    if page.get("body_encoding") == "base64":
        text = ""  # not text: nothing to count
    words = re.findall(r"[^\W\d_]+", text.lower())
    top = collections.Counter(words).most_common(5)
    answer = {"words": len(words), "top": [w for w, _ in top]}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
