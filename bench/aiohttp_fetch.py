#!/usr/bin/env python3
"""The peer users hand-write: asyncio + aiohttp + a Semaphore, hashing each body
with run_in_executor so the event loop is not blocked. One JSON line per URL.

usage: aiohttp_fetch.py CONCURRENCY URLS_FILE > results.jsonl
With BENCH_RESOLVE_ALL=ADDR every host name resolves to ADDR (a custom
resolver, as --resolve does for curl and trawl) and certificates are not checked.
"""
import os
import socket
import asyncio
import hashlib
import json
import sys

import aiohttp


async def fetch(session, sem, loop, url, out):
    async with sem:
        try:
            async with session.get(url) as resp:
                body = await resp.read()
                digest = await loop.run_in_executor(None, lambda: hashlib.sha256(body).hexdigest())
                rec = {"url": url, "ok": 200 <= resp.status < 400, "status": resp.status,
                       "bytes": len(body), "sha256": digest}
        except Exception as e:  # one URL's failure never ends the run
            rec = {"url": url, "ok": False, "error": repr(e)}
    out.write(json.dumps(rec) + "\n")


class ResolveAll:
    """aiohttp resolver that maps every name to one address."""

    def __init__(self, addr):
        self.addr = addr

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": self.addr, "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self):
        pass


async def main():
    concurrency = int(sys.argv[1])
    with open(sys.argv[2]) as f:
        urls = [line.strip() for line in f if line.strip()]
    sem = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    pinned = os.environ.get("BENCH_RESOLVE_ALL")
    if pinned:
        connector = aiohttp.TCPConnector(limit=concurrency, resolver=ResolveAll(pinned), ssl=False)
    else:
        connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(fetch(session, sem, loop, u, sys.stdout) for u in urls))


asyncio.run(main())
