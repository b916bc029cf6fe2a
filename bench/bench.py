#!/usr/bin/env python3
"""trawl's benchmark driver (run it through bench/run.sh, which builds first).

Starts the project's own server (examples/bench_server.rs) on 127.0.0.1, runs each
scenario for every available tool, interleaving the tools run by run so they see
the same machine state, and writes medians and ratios to bench/results/DATE-HOST.md.
Wall time and CPU time (user + system, reaped descendants included) come from a
plain spawn and wait4(). Peak RSS is the largest VmHWM (the kernel's per-process
high-water mark, the figure `/usr/bin/time -v` reports) among the process and its
descendants, sampled every 2 ms. Not /usr/bin/time itself: under it trawl's wall
time grew by ~11 ms, and wait4's ru_maxrss counts the forked Python driver.
The sampler itself costs the tool it watches 2.5-4% of wall time on 2 cores
(trawl 0.371 -> 0.380 s, aiohttp 0.891 -> 0.925 s on 1 MiB bodies, medians of
11), so the peer tables time runs without it and take peak RSS from one more
sampled run per tool; the curves (concurrency, list size) sample their timed runs.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAWL = os.path.join(ROOT, "target", "release", "trawl")
SERVER = os.path.join(ROOT, "target", "release", "examples", "bench_server")
TMP = tempfile.mkdtemp(prefix="trawl-bench-")
notes = []


def have(tool):
    if tool == "aiohttp":
        return subprocess.run([sys.executable, "-c", "import aiohttp"], capture_output=True).returncode == 0
    if tool == "xargs":
        return shutil.which("xargs") and shutil.which("curl")
    return shutil.which(tool) is not None


def vm_hwm_kib(pid):
    """Peak RSS of pid and its descendants (largest single process), in KiB."""
    best = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    best = int(line.split()[1])
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for child in f.read().split():
                best = max(best, vm_hwm_kib(int(child)))
    except (OSError, ValueError):
        pass
    return best


def measure(cmd, stdin_path=None, shell=False, sampling=True):
    """Run once; return wall s, cpu s, peak RSS MiB (None unless sampled) and output lines."""
    out_path = os.path.join(TMP, "out")
    argv = ["sh", "-c", cmd] if shell else list(cmd)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    peak = [0]
    done = threading.Event()
    with open(out_path, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=subprocess.DEVNULL)

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], vm_hwm_kib(proc.pid))
                done.wait(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        if sampling:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        if sampling:
            sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    with open(out_path, "rb") as f:
        lines = sum(1 for _ in f)
    rss = peak[0] / 1024 if sampling else None
    return {"wall": wall, "cpu": cpu, "rss": rss, "lines": lines, "code": proc.returncode}


def write_list(name, urls, line="{}\n"):
    """Write one line per URL (formatted with `line`) to a temp file; return its path."""
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        for u in urls:
            f.write(line.format(u))
    return path


def peers(name, urls, c, trawl_extra=(), want=("trawl", "curl", "aiohttp")):
    """Commands per tool for one URL list at concurrency c."""
    lst = write_list(name, urls)
    tools = {}
    if "trawl" in want:
        tools["trawl"] = ([TRAWL, lst, "-c", str(c), "-q", "--retries", "0", *trawl_extra], None, False)
    if "curl" in want and have("curl"):
        cfg = write_list(name + ".curl", urls, 'url = "{}"\noutput = "/dev/null"\n')
        cmd = ["curl", "-s", "--parallel", "--parallel-immediate", "--parallel-max", str(c), "-K", cfg,
               "-w", "%{json}\\n"]
        tools["curl --parallel"] = (cmd, None, False)
    if "aiohttp" in want and have("aiohttp"):
        tools["asyncio+aiohttp"] = ([sys.executable, os.path.join(ROOT, "bench", "aiohttp_fetch.py"), str(c), lst],
                                    None, False)
    if "xargs" in want and have("xargs"):
        args = write_list(name + ".xargs", urls, "-o /dev/null {}\n")
        cmd = f"xargs -P {c} -n 300 curl -s -w '%{{json}}\\n' < {args}"
        tools["xargs -P + curl"] = (cmd, None, True)
    if "oha" in want and have("oha"):
        tools["oha (load generator)"] = (["oha", "-n", str(len(urls)), "-c", str(c), "--no-tui", urls[0]], None, False)
    for w in want:
        if w not in ("trawl",) and not any(w.split()[0] in t for t in tools):
            notes.append(f"{name}: {w} not installed, skipped (bench/setup.sh installs it)")
    return tools


# Set by --against BIN: another trawl binary (e.g. built from an earlier commit),
# run beside trawl with the same arguments in every peer table.
AGAINST = None


def with_against(tools):
    """Add the --against binary after trawl, with trawl's arguments."""
    if not AGAINST or "trawl" not in tools:
        return tools
    cmd, stdin, shell = tools["trawl"]
    other = cmd.replace(TRAWL, AGAINST[1]) if shell else [AGAINST[1] if c == TRAWL else c for c in cmd]
    out = {}
    for tool, spec in tools.items():
        out[tool] = spec
        if tool == "trawl":
            out[f"trawl ({AGAINST[0]})"] = (other, stdin, shell)
    return out


def run_scenario(name, tools, runs):
    """Interleave tools run by run, timed without the RSS sampler; then one sampled
    run per tool gives every measurement its peak RSS. Return {tool: [measurements]}."""
    tools = with_against(tools)
    results = {t: [] for t in tools}
    for r in range(runs):
        for tool, (cmd, stdin, shell) in tools.items():
            results[tool].append(measure(cmd, stdin, shell, sampling=False))
        print(f"  {name} run {r + 1}/{runs}: " + ", ".join(
            f"{t} {results[t][-1]['wall']:.2f}s" for t in tools), file=sys.stderr)
    for tool, (cmd, stdin, shell) in tools.items():
        rss = measure(cmd, stdin, shell)["rss"]
        for m in results[tool]:
            m["rss"] = rss
    return results


def med(ms, key):
    return statistics.median(m[key] for m in ms)


def table(results, base="trawl"):
    rows = ["| tool | wall median (s) | min (s) | CPU (s) | peak RSS (MiB) | output lines | trawl / tool |",
            "|---|---|---|---|---|---|---|"]
    t_wall = med(results[base], "wall") if base in results else None
    for tool, ms in results.items():
        wall = med(ms, "wall")
        ratio = f"{t_wall / wall:.2f}" if t_wall and tool != base else "—"
        rows.append(f"| {tool} | {wall:.3f} | {min(m['wall'] for m in ms):.3f} | {med(ms, 'cpu'):.2f} | "
                    f"{med(ms, 'rss'):.1f} | {ms[-1]['lines']} | {ratio} |")
    return "\n".join(rows)


def server_get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return r.read().decode()


# Set by --quick: lists a tenth of the size, where fixed start-up costs dominate,
# so the targets are not judged.
SMOKE = False


def verdict(ok, text):
    if SMOKE:
        return f"not judged (--quick: lists 1/10 of the size; {'would pass' if ok else 'would fail'}): {text}"
    return f"**{'met' if ok else 'MISSED'}**: {text}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one run, smaller lists (smoke test)")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--against", metavar="LABEL=BIN", default=None,
                    help="also run another trawl binary beside trawl in every peer table")
    args = ap.parse_args()
    global AGAINST
    if args.against:
        label, _, binary = args.against.rpartition("=")
        AGAINST = (label or "against", os.path.abspath(binary))
    runs = args.runs or (1 if args.quick else 5)
    only = set(filter(None, args.only.split(",")))
    scale = 10 if args.quick else 1
    global SMOKE
    SMOKE = args.quick

    server = subprocess.Popen([SERVER], stdout=subprocess.PIPE, text=True)
    base = server.stdout.readline().strip()
    tls = server.stdout.readline().strip()
    tls1 = server.stdout.readline().strip()
    out = []
    try:
        sections = scenarios(base, tls, tls1, runs, scale, only)
        for title, body in sections:
            out.append(f"## {title}\n\n{body}\n")
    finally:
        server.terminate()
    write_report(out, runs, args)


def scenarios(base, tls, tls1, runs, scale, only):
    def want(name):
        return not only or name in only

    def ids(n):
        return range(n // scale)

    if want("latency200"):
        urls = [f"{base}/b/16?delay=200&i={i}" for i in range(100)]
        res = run_scenario("latency200", peers("latency200", urls, 100), runs)
        ratio = med(res["trawl"], "wall") / 0.2
        yield ("100 URLs x 200 ms latency, c=100",
               table(res) + "\n\n" + verdict(ratio <= 1.10, f"trawl = {ratio:.3f} x the ideal 0.2 s (target <= 1.10)"))

    if want("latency100"):
        n = 2000 // scale
        urls = [f"{base}/b/16?delay=100&i={i}" for i in range(n)]
        res = run_scenario("latency100", peers("latency100", urls, 100), runs)
        ideal = n * 0.1 / 100
        ratio = med(res["trawl"], "wall") / ideal
        yield (f"{n} URLs x 100 ms latency, c=100",
               table(res) + "\n\n" + verdict(ratio <= 1.03, f"trawl = {ratio:.3f} x the ideal {ideal:.1f} s (target <= 1.03)"))

    if want("tiny"):
        n = 20000 // scale
        urls = [f"{base}/b/16?i={i}" for i in ids(20000)]
        server_get(base, "/reset")
        tools = peers("tiny", urls, 64, want=("trawl", "curl", "oha", "aiohttp", "xargs"))
        # Lean (issue 31): the same list without hashing, and to a file instead of stdout.
        lst = tools["trawl"][0][1]
        tools["trawl --hash none"] = ([TRAWL, lst, "-c", "64", "-q", "--retries", "0", "--hash", "none"], None, False)
        tools["trawl -o FILE"] = ([TRAWL, lst, "-c", "64", "-q", "--retries", "0", "-o", os.path.join(TMP, "tiny.jsonl")],
                                  None, False)
        res = run_scenario("tiny", tools, runs)
        t = med(res["trawl"], "wall")
        lines = [table(res), "", "CPU per request (user + system over the requests, medians):", ""]
        for tool, ms in res.items():
            lines.append(f"- {tool}: {med(ms, 'cpu') / n * 1e6:.1f} us")
        lines.append("")
        if "curl --parallel" in res:
            r = t / med(res["curl --parallel"], "wall")
            lines.append(verdict(r <= 0.5, f"trawl / curl --parallel = {r:.2f} (target <= 0.5)"))
        if "oha (load generator)" in res:
            oha = res["oha (load generator)"]
            r = t / med(oha, "wall")
            lines.append(verdict(r <= 1.3, f"trawl / oha wall = {r:.2f} (target <= 1.3)"))
            r = med(res["trawl"], "cpu") / med(oha, "cpu")
            lines.append(verdict(r <= 2.0, f"trawl / oha CPU per request = {r:.2f} (target <= 2)"))
        conns = json.loads(server_get(base, "/stats"))
        lines.append(f"\nServer counters over the whole scenario (all tools, all runs): {conns['requests']} requests "
                     f"on {conns['connections']} connections (connection reuse).")
        yield (f"{n} tiny responses, c=64", "\n".join(lines))

    if want("scale"):
        # Per-URL cost and memory as the list grows (issue 31): 100k and 1M from a
        # file, interleaved; 10M from a pipe (awk writes the URLs), beside more 100k runs.
        small, big, huge = 100_000 // scale, 1_000_000 // scale, 10_000_000 // scale
        lists = {k: write_list(f"scale{k}", (f"{base}/b/16?i={i}" for i in range(k))) for k in (small, big)}
        cmd = lambda src: [TRAWL, src, "-q", "-c", "64", "--retries", "0"]
        got = {small: [], big: []}
        for r in range(max(1, runs // 2 + 1)):
            for k in (small, big):
                got[k].append(measure(cmd(lists[k]), sampling=False))
            print(f"  scale run {r + 1}: 100k {got[small][-1]['wall']:.2f}s, 1M {got[big][-1]['wall']:.2f}s",
                  file=sys.stderr)
        gen = (f"awk 'BEGIN {{ for (i = 0; i < {huge}; i++) print \"{base}/b/16?i=\" i }}' | "
               f"{TRAWL} - -q -c 64 --retries 0")
        piped = measure(gen, shell=True)
        got[small].append(measure(cmd(lists[small]), sampling=False))
        rss_small = measure(cmd(lists[small]))["rss"]
        rss_big = measure(cmd(lists[big]))["rss"]
        per = {k: med(ms, "wall") / k * 1e6 for k, ms in got.items()}
        per_huge = piped["wall"] / huge * 1e6
        rows = ["| URLs | input | runs | wall median (s) | per URL (us) | vs 100k | peak RSS (MiB) | records |",
                "|---|---|---|---|---|---|---|---|",
                f"| {small} | file | {len(got[small])} | {med(got[small], 'wall'):.2f} | {per[small]:.2f} | 1.00 | {rss_small:.1f} | {got[small][-1]['lines']} |",
                f"| {big} | file | {len(got[big])} | {med(got[big], 'wall'):.2f} | {per[big]:.2f} | {per[big] / per[small]:.3f} | {rss_big:.1f} | {got[big][-1]['lines']} |",
                f"| {huge} | pipe | 1 | {piped['wall']:.1f} | {per_huge:.2f} | {per_huge / per[small]:.3f} | {piped['rss']:.1f} | {piped['lines']} |",
                "",
                verdict(per[big] <= 1.05 * per[small], f"1M per URL = {per[big] / per[small]:.3f} x the 100k run (target <= 1.05)"),
                verdict(per_huge <= 1.05 * per[small] and piped["rss"] <= 32,
                        f"10M from a pipe: {per_huge / per[small]:.3f} x the 100k per URL (target <= 1.05), "
                        f"peak RSS {piped['rss']:.1f} MiB (target <= 32)")]
        yield ("Per-URL cost and memory as the list grows (tiny responses, c=64)", "\n".join(rows))

    if want("size"):
        size = os.path.getsize(TRAWL)
        yield ("Binary size (the release profile, as `cargo install --path .` builds it)",
               f"target/release/trawl: {size} bytes = {size / 2**20:.2f} MiB\n\n"
               + verdict(size <= 16 * 2**20, f"{size / 2**20:.2f} MiB (target <= 16 MiB)"))

    if want("h2"):
        n = 20000 // scale
        urls = [f"{tls}/b/16?i={i}" for i in ids(20000)]
        lst = write_list("h2", urls)
        tools = {"trawl": ([TRAWL, lst, "-c", "64", "-q", "--retries", "0", "--insecure"], None, False)}
        if have("curl"):
            cfg = write_list("h2.curl", urls, 'url = "{}"\noutput = "/dev/null"\n')
            # Without --parallel-immediate curl waits for the first connection and multiplexes.
            tools["curl --parallel"] = (["curl", "-sk", "--parallel", "--parallel-max", "64", "-K", cfg,
                                         "-w", "%{json}\\n"], None, False)
        if have("oha"):
            tools["oha, 1 connection x 64 streams"] = (["oha", "-n", str(n), "-c", "1", "-p", "64", "--http2",
                                                        "--insecure", "--no-tui", urls[0]], None, False)
        res = run_scenario("h2", tools, runs)
        rows = [table(res), "", "Connections each tool opened (one more run each, counted by the server):", ""]
        for tool, (cmd, stdin, shell) in tools.items():
            server_get(base, "/reset")
            measure(cmd, stdin, shell)
            # Minus the connection that asks for the counters.
            conns = json.loads(server_get(base, "/stats"))["connections"] - 1
            rows.append(f"- {tool}: {conns}")
        if "curl --parallel" in res:
            r = med(res["trawl"], "wall") / med(res["curl --parallel"], "wall")
            rows.append(f"\ntrawl / curl --parallel = {r:.2f} (no target; HTTP/2 is not in the issue's table)")
        yield (f"{n} tiny responses over HTTPS, HTTP/2 by ALPN, c=64", "\n".join(rows))

    for proto, origin in (("h2", tls), ("http1", tls1)):
        if not want("hosts") and not want(f"hosts-{proto}"):
            continue
        n, names = 10000 // scale, 1000 // scale
        port = origin.rsplit(":", 1)[1]
        hosts = [f"h{j}.bench.test" for j in range(names)]
        urls = [f"https://{hosts[i % names]}:{port}/b/16?i={i}" for i in range(n)]
        lst = write_list(f"hosts-{proto}", urls)
        pins = [f"{h}:{port}:127.0.0.1" for h in hosts]
        trawl_cmd = [TRAWL, lst, "-c", "64", "-q", "--retries", "0", "--insecure"]
        for p in pins:
            trawl_cmd += ["--resolve", p]
        tools = {"trawl": (trawl_cmd, None, False)}
        if have("curl"):
            cfg = os.path.join(TMP, f"hosts-{proto}.curl")
            with open(cfg, "w") as f:
                f.writelines(f'resolve = "{p}"\n' for p in pins)
                f.writelines(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls)
            # Without --parallel-immediate curl waits for a host's first connection and multiplexes.
            tools["curl --parallel"] = (["curl", "-sk", "--parallel", "--parallel-max", "64", "-K", cfg,
                                         "-w", "%{json}\\n"], None, False)
        if have("aiohttp"):
            cmd = f"BENCH_RESOLVE_ALL=127.0.0.1 {sys.executable} {os.path.join(ROOT, 'bench', 'aiohttp_fetch.py')} 64 {lst}"
            tools["asyncio+aiohttp"] = (cmd, None, True)
        res = run_scenario(f"hosts-{proto}", tools, runs)
        # The slowest record, from one more trawl run.
        measure(trawl_cmd, sampling=False)
        with open(os.path.join(TMP, "out")) as f:
            slowest = max(json.loads(line).get("elapsed_ms", 0) for line in f)
        lines = [table(res), ""]
        if "asyncio+aiohttp" in res:
            r = med(res["trawl"], "wall") / med(res["asyncio+aiohttp"], "wall")
            lines.append(verdict(r <= 0.5 and slowest <= 1000,
                                 f"trawl / asyncio+aiohttp = {r:.2f} (target <= 0.5); slowest trawl record "
                                 f"{slowest:.0f} ms (target <= 1000)"))
        what = "HTTP/2 by ALPN" if proto == "h2" else "HTTP/1.1 only"
        yield (f"{n} URLs over {names} host names, HTTPS, {what}, c=64, names pinned with --resolve", "\n".join(lines))

    if want("html"):
        n = 5000 // scale
        urls = [f"{base}/h/{i}?size=10240" for i in range(n)]
        res = run_scenario("html", peers("html", urls, 32, trawl_extra=("--title",), want=("trawl", "curl")), runs)
        lines = [table(res), ""]
        if "curl --parallel" in res:
            r = med(res["trawl"], "wall") / med(res["curl --parallel"], "wall")
            lines.append(verdict(r <= 1.5, f"trawl --title / curl (extracts nothing) = {r:.2f} (target <= 1.5)"))
        yield (f"{n} HTML pages of 10 KiB, c=32, --title", "\n".join(lines))

    if want("mb"):
        n = 600 // scale
        urls = [f"{base}/b/1048576?i={i}" for i in range(n)]
        tools = peers("mb", urls, 16)
        # The floor beside it: the same run without hashing.
        tools["trawl --hash none"] = (tools["trawl"][0] + ["--hash", "none"], None, False)
        res = run_scenario("mb", tools, runs)
        lines = [table(res), ""]
        rss = med(res["trawl"], "rss")
        if "asyncio+aiohttp" in res:
            r = med(res["trawl"], "wall") / med(res["asyncio+aiohttp"], "wall")
            lines.append(verdict(r <= 0.45 and rss <= 64,
                                 f"trawl / asyncio+aiohttp = {r:.2f} (target <= 0.45); peak RSS {rss:.1f} MiB (target <= 64)"))
        cores = med(res["trawl"], "cpu") / med(res["trawl"], "wall")
        lines.append(f"trawl CPU time / wall time = {cores:.2f} cores busy on average ({os.cpu_count()} cores).")
        lines.append(f"Single-stream SHA-256 on this CPU (OpenSSL via hashlib, 256 MiB, hot / cold): {sha256_rates()}.")
        yield (f"{n} bodies of 1 MiB, c=16, sha256 each", "\n".join(lines))

    if want("large"):
        # Bodies larger than trawl hashes whole (2 MiB): hashed as they arrive and
        # let go, so memory follows -c, not the body size.
        n = max(48 // scale, 4)
        urls = [f"{base}/b/33554432?i={i}" for i in range(n)]
        tools = peers("large", urls, 16, trawl_extra=("--max-body", "64MiB"), want=("trawl", "aiohttp"))
        res = run_scenario("large", tools, runs)
        lines = [table(res), ""]
        rss = med(res["trawl"], "rss")
        lines.append(verdict(rss <= 128, f"trawl peak RSS {rss:.1f} MiB for {n} x 32 MiB at -c 16 "
                                         f"(target <= 128: a few pieces per fetch, not 16 whole bodies = 512 MiB)"))
        yield (f"{n} bodies of 32 MiB, c=16, sha256 each", "\n".join(lines))

    if want("rate"):
        n = 2000 // scale
        server_get(base, "/reset")
        lst = write_list("rate", [f"{base}/b/16?log=1&i={i}" for i in range(n)])
        m = measure([TRAWL, lst, "-q", "--rate", "200/s", "-c", "50"])
        arrivals = json.loads(server_get(base, "/arrivals"))
        arrivals.sort()
        span = (arrivals[-1] - arrivals[0]) / 1e6
        ideal = (n - 1) / 200
        j, worst = 0, 0
        for i, a in enumerate(arrivals):
            while arrivals[j] <= a - 1_000_000:
                j += 1
            worst = max(worst, i - j + 1)
        err = abs(span - ideal) / ideal * 100
        body = (f"| requests | first-to-last start (s) | ideal (s) | error | max starts in any 1 s window | wall (s) |\n"
                f"|---|---|---|---|---|---|\n| {len(arrivals)} | {span:.3f} | {ideal:.3f} | {err:.2f}% | {worst} | {m['wall']:.2f} |\n\n"
                + verdict(err <= 1.0 and worst <= 201, "within 1% of ideal and no 1 s window above 201"))
        yield (f"--rate 200/s over {n} requests (server-side timestamps)", body)

    if want("concurrency"):
        n = 5000 // scale
        lst = write_list("conc", [f"{base}/b/16?i={i}" for i in range(n)])
        rows = ["| concurrency | wall median (s) | requests/s | CPU (s) | peak RSS (MiB) |", "|---|---|---|---|---|"]
        for c in (1, 4, 16, 64, 256, 512):
            ms = [measure([TRAWL, lst, "-q", "-c", str(c)]) for _ in range(max(1, runs // 2))]
            wall = med(ms, "wall")
            rows.append(f"| {c} | {wall:.3f} | {n / wall:.0f} | {med(ms, 'cpu'):.2f} | {med(ms, 'rss'):.1f} |")
        yield (f"Cost as concurrency grows ({n} tiny responses)", "\n".join(rows))

    if want("rss"):
        rows = ["| URLs | wall (s) | requests/s | peak RSS (MiB) | records |", "|---|---|---|---|---|"]
        rss = {}
        for n in (10_000, 100_000, 1_000_000):
            n //= scale
            lst = write_list("rss", (f"{base}/b/16?i={i}" for i in range(n)))
            m = measure([TRAWL, lst, "-q", "-c", "64", "--retries", "0"])
            rss[n] = m["rss"]
            rows.append(f"| {n} | {m['wall']:.2f} | {n / m['wall']:.0f} | {m['rss']:.1f} | {m['lines']} |")
        big, mid = max(rss), sorted(rss)[1]
        rows.append("")
        rows.append(verdict(rss[big] <= 64 and rss[big] <= 1.3 * rss[mid],
                            f"peak RSS at {big} URLs = {rss[big]:.1f} MiB (target <= 64), {rss[big] / rss[mid]:.2f} x the RSS at {mid} (target <= 1.3)"))
        yield ("Memory as the list grows (tiny responses, c=64)", "\n".join(rows))

    if want("throttle"):
        n, limit = 400 // scale, 20
        rows = []
        for label, extra in (("trawl --auto-throttle", ["--auto-throttle"]), ("trawl (fixed, no throttle)", [])):
            server_get(base, "/reset")
            lst = write_list("throttle", (f"{base}/limited/{limit}?i={i}" for i in range(n)))
            m = measure([TRAWL, lst, "-q", "-c", "50", *extra], sampling=False)
            with open(os.path.join(TMP, "out")) as f:
                ok = sum('"ok":true' in line for line in f)
            log = json.loads(server_get(base, "/limited-log"))
            accepted = [t for t, st in log if st == 200]
            refused = len(log) - len(accepted)
            span = (max(accepted) - min(accepted)) / 1e6 if accepted else 0.0
            ideal = n / limit
            curve = {}
            for t, st in log:
                sec = int((t - log[0][0]) / 1e6)
                a, r = curve.get(sec, (0, 0))
                curve[sec] = (a + (st == 200), r + (st != 200))
            rows.append(f"**{label}**: {ok}/{n} inputs ok, {refused} of {len(log)} requests drew a 429 "
                        f"({100 * refused / max(1, len(log)):.1f}%), accepted over {span:.2f} s = "
                        f"{span / ideal:.2f} x the server's own limit ({ideal:.0f} s); wall {m['wall']:.2f} s.")
            rows.append("")
            rows.append("Requests accepted / refused per second (the convergence curve): " +
                        ", ".join(f"{a}/{r}" for _, (a, r) in sorted(curve.items())))
            rows.append("")
            if extra:
                rows.append(verdict(ok == n and refused <= 0.1 * len(log) and span <= 1.4 * ideal,
                                    f"all {n} inputs ok ({ok}), 429s {100 * refused / max(1, len(log)):.1f}% "
                                    f"(target <= 10%), time {span / ideal:.2f} x the limit (target <= 1.4)"))
                rows.append("")
        yield (f"--auto-throttle: {n} requests to a server that allows {limit} per sliding second "
               f"and answers 429 above it, c=50", "\n".join(rows))

    if want("since"):
        rows = ["| URLs = PREV records | index PREV (s) | run (s) | run --since (s) | peak RSS (MiB) | "
                "peak RSS --since (MiB) | unchanged |",
                "|---|---|---|---|---|---|---|"]
        prev = os.path.join(TMP, "since-prev.jsonl")
        empty = [measure([TRAWL, "/dev/null", "-q"], sampling=False)["wall"] for _ in range(3)]
        result = {}
        for n in (10_000, 100_000, 1_000_000):
            n //= scale
            lst = write_list("since", (f"{base}/b/16?i={i}" for i in range(n)))
            plain = measure([TRAWL, lst, "-q", "-c", "64", "--retries", "0", "-o", prev])
            # Index build: trawl on an empty list with --since, less trawl on an empty list.
            index = statistics.median(
                measure([TRAWL, "--since", prev, "/dev/null", "-q"], sampling=False)["wall"]
                for _ in range(3)) - statistics.median(empty)
            since = measure([TRAWL, lst, "-q", "-c", "64", "--retries", "0", "--since", prev])
            with open(os.path.join(TMP, "out")) as f:
                unchanged = sum('"change":"unchanged"' in line for line in f)
            result[n] = (index, since["rss"])
            rows.append(f"| {n} | {index:.2f} | {plain['wall']:.2f} | {since['wall']:.2f} | {plain['rss']:.1f} | "
                        f"{since['rss']:.1f} | {unchanged} |")
        big = max(result)
        rows.append("")
        rows.append(verdict(result[big][0] <= 2 and result[big][1] <= 96,
                            f"index of a {big}-record PREV built in {result[big][0]:.2f} s (target <= 2); "
                            f"peak RSS of the --since run {result[big][1]:.1f} MiB (target <= 96)"))
        yield ("Nightly re-runs: --since PREV as the list and PREV grow (tiny responses, c=64)", "\n".join(rows))

    yield from exec_scenarios(base, runs, scale, want)
    yield from warc_scenarios(base, runs, scale, want)


def exec_scenarios(base, runs, scale, want):
    """--exec: the cost of the worker stage, the per-URL anchor, and a CPU-bound pool."""
    echo = f"python3 {os.path.join(ROOT, 'bench', 'echo_worker.py')}"
    cores = os.cpu_count() or 2
    for name, n, path in (("exec-tiny", 20000, "/b/16?i={}"), ("exec-html", 5000, "/h/{}")):
        if not want(name) and not want("exec"):
            continue
        n //= scale
        lst = write_list(name, (base + path.format(i) for i in range(n)))
        plain = [TRAWL, lst, "-c", "64", "-q", "--retries", "0"]
        tools = {"trawl": (plain, None, False),
                 "trawl --exec (Python echo)": (plain + ["--exec", echo], None, False)}
        res = run_scenario(name, tools, runs)
        t, e = med(res["trawl"], "wall"), med(res["trawl --exec (Python echo)"], "wall")
        rows = [table(res), "", verdict(e <= 2 * t, f"--exec / without = {e / t:.2f} (target <= 2)")]
        if name == "exec-tiny":
            if have("parallel"):
                k = min(n, 1000)
                few = write_list("exec-few", (base + path.format(i) for i in range(k)))
                per = os.path.join(ROOT, "bench", "per_url.sh")
                cmd = f"parallel -j {cores * 2} sh {per} :::: {few}"
                walls = [measure(cmd, shell=True, sampling=False)["wall"] for _ in range(max(1, runs // 2))]
                per_url = statistics.median(walls) / k
                ours = e / n
                rows.append(verdict(per_url >= 10 * ours,
                                    f"GNU parallel -j {cores * 2} + curl + Python per URL: {per_url * 1000:.2f} ms a URL "
                                    f"(over {k} URLs) against {ours * 1000:.3f} ms with --exec: {per_url / ours:.0f} x "
                                    f"(target >= 10)"))
            else:
                notes.append("exec-tiny: GNU parallel not installed, its anchor skipped (bench/setup.sh installs it)")
        yield (f"--exec: {n} {'tiny' if name == 'exec-tiny' else 'HTML'} responses, c=64, a Python echo worker "
               f"x {cores} (the cores)", "\n".join(rows))
    if want("exec-cpu") or want("exec"):
        n, burn = 2000 // scale, 5
        lst = write_list("exec-cpu", (f"{base}/b/16?i={i}" for i in range(n)))
        cmd = [TRAWL, lst, "-c", "64", "-q", "--retries", "0", "--exec", echo]
        os.environ["BURN_MS"] = str(burn)
        try:
            res = run_scenario("exec-cpu", {"trawl --exec (5 ms of CPU per body)": (cmd, None, False)}, runs)
        finally:
            del os.environ["BURN_MS"]
        ms = res["trawl --exec (5 ms of CPU per body)"]
        wall = med(ms, "wall")
        ideal = n * burn / 1000 / cores
        yield (f"--exec, CPU-bound: {n} bodies, a worker that burns {burn} ms of CPU on each, x {cores} workers",
               table(res, base="trawl --exec (5 ms of CPU per body)") + "\n\n" +
               verdict(wall <= 1.3 * ideal, f"wall {wall:.2f} s against total worker CPU / cores = {ideal:.2f} s: "
                                             f"{wall / ideal:.2f} x (target <= 1.3)"))


def warc_scenarios(base, runs, scale, want):
    """--warc: the cost of archiving, beside the same run without it; wget --warc-file as an anchor."""
    cases = (("warc-tiny", 20000, "/b/16?i={}", 64, (), "tiny"),
             ("warc-html", 5000, "/h/{}?size=10240", 32, ("--title",), "HTML pages of 10 KiB, --title"),
             ("warc-mb", 600, "/b/1048576?i={}", 16, (), "bodies of 1 MiB"))
    for name, n, path, c, extra, what in cases:
        if not want(name) and not want("warc"):
            continue
        n //= scale
        lst = write_list(name, (base + path.format(i) for i in range(n)))
        plain = [TRAWL, lst, "-c", str(c), "-q", "--retries", "0", *extra]
        warc = os.path.join(TMP, f"{name}.warc.gz")
        tools = {"trawl": (plain, None, False), "trawl --warc": (plain + ["--warc", warc], None, False)}
        res = run_scenario(name, tools, runs)
        t, w = med(res["trawl"], "wall"), med(res["trawl --warc"], "wall")
        more = med(res["trawl --warc"], "rss") - med(res["trawl"], "rss")
        size = os.path.getsize(warc) / (1 << 20)
        rows = [table(res), "",
                verdict(w <= 1.25 * t and more <= 16,
                        f"--warc / without = {w / t:.2f} (target <= 1.25); peak RSS {more:+.1f} MiB (target <= +16); "
                        f"the WARC file: {size:.1f} MiB"),
                ]
        if name == "warc-tiny":
            if have("wget"):
                k = min(n, 1000)
                few = write_list("warc-few", (base + path.format(i) for i in range(k)))
                cmd = ["wget", "-q", "--warc-file", os.path.join(TMP, "wget"), "-i", few, "-O", "/dev/null"]
                walls = [measure(cmd, sampling=False)["wall"] for _ in range(max(1, runs // 2))]
                per_url = statistics.median(walls) / k
                rows.append(f"Anchor (sequential, not a peer): wget --warc-file on {k} of the URLs, "
                            f"{per_url * 1000:.2f} ms a URL against {w / n * 1000:.3f} ms for trawl --warc: "
                            f"{per_url / (w / n):.0f} x")
            else:
                notes.append("warc-tiny: wget not installed, its anchor skipped")
        yield (f"--warc: {n} {what}, c={c}, with and without --warc", "\n".join(rows))


def machine():
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(open("/proc/meminfo").readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    thp = "unknown"
    try:
        # "always [madvise] never": the bracketed word is the mode in force.
        thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        pass
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), {mem} RAM, "
            f"transparent huge pages: {thp}, host {socket.gethostname()}")


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.splitlines()[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not installed"


def sha256_rates():
    """GB/s of one SHA-256 stream: over one 1 MiB buffer again and again (hot in
    cache), and over 256 distinct 1 MiB buffers (cold, as bodies arrive)."""
    import hashlib
    hot = bytes(1 << 20)
    bufs = [os.urandom(1 << 20) for _ in range(256)]
    rates = []
    for data in ([hot] * 256, bufs):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for b in data:
                hashlib.sha256(b).digest()
            best = min(best, time.perf_counter() - start)
        rates.append(256 * (1 << 20) / best / 1e9)
    return f"{rates[0]:.2f} / {rates[1]:.2f} GB/s"


def hash_kernel():
    """The CPU-dependent choice trawl made here: its second --version line."""
    try:
        lines = subprocess.run([TRAWL, "--version"], capture_output=True, text=True, timeout=10).stdout.splitlines()
        return lines[1].strip() if len(lines) > 1 else "hash kernel unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "hash kernel unknown"


def write_report(sections, runs, args):
    now = datetime.datetime.now(datetime.timezone.utc)
    aiohttp = version([sys.executable, "-c", "import aiohttp, sys; print('aiohttp', aiohttp.__version__, 'on Python', sys.version.split()[0])"])
    head = [
        f"# trawl benchmark, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {machine()}",
        f"- trawl: {version([TRAWL, '--version'])}; {hash_kernel()}; curl: {version(['curl', '--version'])}",
        *([f"- Beside it, `trawl ({AGAINST[0]})`: {AGAINST[1]}, same arguments, interleaved in every peer table"]
          if AGAINST else []),
        f"- {aiohttp}; oha: {version(['oha', '--version'])}",
        f"- Runs per tool: {runs} (median shown), tools interleaved run by run; "
        f"`bench/run.sh {' '.join(sys.argv[1:])}`".rstrip(),
        "- Server: examples/bench_server.rs on 127.0.0.1 (same 2 cores as the clients). Every tool writes one line per"
        " URL (trawl records, curl `-w '%{json}'`, the aiohttp script's JSON lines) to a file.",
        "- Wall and CPU (user + system, whole process tree) from a plain spawn and wait4(); peak RSS = largest VmHWM"
        " of the process tree (what `/usr/bin/time -v` reports), sampled every 2 ms, in peer tables from one more"
        " run per tool so the sampler's CPU (2.5-4% of wall on 2 cores) stays out of the timed runs.",
        "",
    ]
    if notes:
        head += ["Notes:", ""] + [f"- {n}" for n in sorted(set(notes))] + [""]
    text = "\n".join(head) + "\n" + "\n".join(sections)
    suffix = ("-quick" if args.quick else "") + (f"-vs-{AGAINST[0]}" if AGAINST else "") + (f"-only-{args.only.replace(',', '-')}" if args.only else "")
    name = f"{now:%Y-%m-%d}-{socket.gethostname()}{suffix}.md"
    path = os.path.join(ROOT, "bench", "results", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(text)
    print(f"\nwritten to {os.path.relpath(path, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
