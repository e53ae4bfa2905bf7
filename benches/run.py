#!/usr/bin/env python3
"""Benchmark harness: sioloop against socketioxide and the reference socket.io (node).

Builds the three servers, the idle-ping floor (benches/floor, a bare mio loop that only
pings; run for the idle-ping scenarios alone) and the load generator, then for each run,
server and scenario starts the server fresh on core 0 (taskset -c 0), runs benches/loadgen
on core 1 against it, and keeps the loadgen's one-line JSON. Raw results go to
benches/results/<UTC>.jsonl, and a Markdown table of medians over the runs goes to stdout
(progress to stderr).

    python3 benches/run.py                       # 3 runs, all servers, all scenarios
    python3 benches/run.py --quick               # 1 short run, for smoke tests
    python3 benches/run.py --servers sioloop,node --scenarios echo,fanout128 --runs 5
    python3 benches/run.py --quick --scenarios storm,idle-ping   # a name without its
                                                                 # client count selects all

Python 3.11 standard library only.
"""

import argparse
import atexit
import json
import os
import platform
import queue
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from datetime import datetime, timezone
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
ROOT = BENCHES.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
SIOLOOP_BIN = TARGET / "release" / "examples" / "bench_server"
SOCKETIOXIDE_DIR = BENCHES / "socketioxide"
SOCKETIOXIDE_BIN = SOCKETIOXIDE_DIR / "target" / "release" / "socketioxide-bench"
NODE_DIR = BENCHES / "node"
LOADGEN_DIR = BENCHES / "loadgen"
LOADGEN_BIN = LOADGEN_DIR / "target" / "release" / "loadgen"
FLOOR_DIR = BENCHES / "floor"
FLOOR_BIN = FLOOR_DIR / "target" / "release" / "floor"

# The floor is no Socket.IO server: it only answers the handshake and pings, so it runs the
# idle-ping scenarios alone, as the least any server must spend per ping.
# sioloop-recovery: the same server with connection state recovery on (bench_server
# --recovery), for its cost side by side with it off.
SERVERS = ["sioloop", "sioloop-recovery", "socketioxide", "node", "floor"]
FLOOR_SCENARIOS = ("idle-ping",)
# The idle-ping servers ping every second (all four read these variables), so a window of a
# few seconds spans several ping rounds; the defaults (25 s / 20 s) would take minutes.
IDLE_PING_ENV = {"PING_INTERVAL_MS": "1000", "PING_TIMEOUT_MS": "800"}
# Descriptors kept free besides the clients: listeners, pipes, the loadgen's poll and /proc.
NOFILE_SLACK = 100
SERVER_CORE, LOADGEN_CORE = "0", "1"
READY_TIMEOUT = 30  # seconds for a server to print its `listening on` line
BUILD_TIMEOUT = 1800  # a first build of socketioxide on two shared cores takes minutes


def raise_nofile() -> int:
    """Raises the soft open-file limit to the hard one (the servers and the loadgen inherit
    it) and returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def idle_counts(quick: bool, nofile: int) -> list[int]:
    """Client counts of the storm and idle-ping scenarios: 10 000 and the largest the
    open-file limit allows (a server holds one descriptor per client)."""
    if quick:
        return [1000, 2000]
    largest = nofile - NOFILE_SLACK
    return sorted({min(10_000, largest), largest})


def base_name(name: str) -> str:
    """A scenario's name without its client or in-flight count: storm10000 -> storm."""
    return re.sub(r"\d+$", "", name)


def applies(server: str, name: str) -> bool:
    return server != "floor" or base_name(name) in FLOOR_SCENARIOS


def server_env(name: str) -> dict[str, str]:
    return IDLE_PING_ENV if base_name(name) == "idle-ping" else {}


def scenarios(quick: bool, nofile: int) -> dict[str, list[str]]:
    """Scenario name -> loadgen arguments."""
    dur = ["--duration", "2" if quick else "5"]
    fanout = lambda k: ["--scenario", "fanout", "--clients", "1000", "--in-flight", str(k), *dur]
    # Storm: every client drops and reconnects, 1 000 handshakes in flight. Idle-ping: a
    # window of 10 ping rounds (2 for --quick) after 2 rounds of warmup.
    storm = lambda n: ["--scenario", "storm", "--clients", str(n), "--concurrency", "1000"]
    ping_window = ["--warmup", "2", "--duration", "2" if quick else "10"]
    idle_ping = lambda n: ["--scenario", "idle-ping", "--clients", str(n), *ping_window]
    counts = idle_counts(quick, nofile)
    return {
        "idle": ["--scenario", "idle", "--clients", "1000" if quick else "10000"],
        "echo": ["--scenario", "echo", "--clients", "100", *dur],
        "fanout1": fanout(1),
        "fanout32": fanout(32),
        "fanout128": fanout(128),
        "binary": ["--scenario", "binary", "--clients", "100", *dur],
        "polling": ["--scenario", "polling", "--clients", "100", *dur],
        **{f"storm{n}": storm(n) for n in counts},
        **{f"idle-ping{n}": idle_ping(n) for n in counts},
    }


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ---- processes -------------------------------------------------------------------------

LIVE: set[subprocess.Popen] = set()  # servers to kill whatever happens


def kill_all() -> None:
    for p in list(LIVE):
        stop(p)


atexit.register(kill_all)
# SIGTERM/SIGHUP to the harness unwind through the finally blocks and atexit like Ctrl-C.
for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, lambda signum, _frame: sys.exit(128 + signum))


def run_step(what: str, cmd: list, cwd: Path, timeout: float) -> None:
    """A build step: output goes to the terminal, failure stops the harness."""
    log(f"== {what}: {' '.join(map(str, cmd))}")
    try:
        subprocess.run(cmd, cwd=cwd, timeout=timeout, check=True, stdout=sys.stderr)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        sys.exit(f"{what} failed: {e}")


def server_cmd(name: str) -> tuple[list, Path]:
    # Port 0: the kernel picks a free port, which the server prints in its `listening on` line.
    if name == "sioloop":
        return [SIOLOOP_BIN, "--port", "0"], ROOT
    if name == "sioloop-recovery":
        return [SIOLOOP_BIN, "--port", "0", "--recovery"], ROOT
    if name == "socketioxide":
        return [SOCKETIOXIDE_BIN, "--port", "0"], SOCKETIOXIDE_DIR
    if name == "floor":
        return [FLOOR_BIN, "--port", "0"], FLOOR_DIR
    return [shutil.which("node") or "node", NODE_DIR / "server.mjs", "--port", "0"], NODE_DIR


class Server:
    """A server pinned to SERVER_CORE. taskset execs the command, so the Popen's pid is the
    server process itself (checked in start), which is what --server-pid must measure."""

    def __init__(self, name: str, env: dict[str, str]):
        self.name = name
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.addr = ""
        self.stderr = tempfile.TemporaryFile()
        self.lines: "queue.Queue[str | None]" = queue.Queue()

    def start(self) -> None:
        cmd, cwd = server_cmd(self.name)
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *map(str, cmd)], cwd=cwd, env=self.environ(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        LIVE.add(self.proc)
        # A reader thread keeps draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"no `listening on` line within {READY_TIMEOUT} s")
            if line is None:
                raise RuntimeError(f"exited with {self.proc.wait()} before listening")
            if line.startswith("listening on "):
                self.addr = line.split()[2]
                break
        exe = Path(f"/proc/{self.proc.pid}/exe").resolve().name
        if exe == "taskset":  # never measure a wrapper instead of the server
            raise RuntimeError(f"pid {self.proc.pid} is taskset, not the server")

    def environ(self) -> dict[str, str]:
        """The harness's environment without heartbeat settings of its own (they would
        change every scenario), plus this server's."""
        inherited = {k: v for k, v in os.environ.items() if k not in IDLE_PING_ENV}
        return {**inherited, **self.env}

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return tail(self.stderr.read().decode(errors="replace"))

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)
        self.stderr.close()


def stop(p: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 2 s."""
    try:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        pass
    LIVE.discard(p)


def run_one(loadgen: Path, server_name: str, args: list[str], env: dict[str, str]) -> dict:
    """One fresh server (with `env` added to its environment), one loadgen run. Returns
    {"result": {...}} or {"error": ...}."""
    srv = Server(server_name, env)
    try:
        try:
            srv.start()
        except (RuntimeError, OSError) as e:
            return {"error": f"server: {e}", "stderr_tail": srv.stderr_tail()}
        cmd = ["taskset", "-c", LOADGEN_CORE, str(loadgen), "--addr", srv.addr, *args,
               "--server-pid", str(srv.proc.pid)]
        # Generous: connecting 10 000 clients or a slow server may take a while, but never hang.
        duration = sum(float(args[args.index(f) + 1]) for f in ("--duration", "--warmup")
                       if f in args)
        timeout = 180 + 3 * duration
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
            return {"error": f"loadgen timed out after {timeout:.0f} s", "stderr_tail": tail(err or "")}
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        rec: dict = {}
        if lines:
            try:
                rec["result"] = json.loads(lines[-1])
            except json.JSONDecodeError:
                pass
        if out.returncode != 0 or "result" not in rec:
            rec["error"] = f"loadgen exited {out.returncode}" + ("" if lines else ", no JSON")
            rec["stderr_tail"] = tail(out.stderr)
        if srv.proc.poll() is not None:  # a crash mid-run invalidates the numbers
            rec["error"] = f"server exited with {srv.proc.returncode} during the run"
            rec["stderr_tail"] = srv.stderr_tail()
        return rec
    finally:
        srv.stop()


# ---- environment -----------------------------------------------------------------------


def cmd_out(cmd: list) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def environment(nofile: int) -> dict:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    sioxide = "?"
    lock = SOCKETIOXIDE_DIR / "Cargo.lock"
    if lock.exists():
        pkgs = tomllib.loads(lock.read_text()).get("package", [])
        sioxide = next((p["version"] for p in pkgs if p["name"] == "socketioxide"), "?")
    sio = "?"
    pkg = NODE_DIR / "node_modules" / "socket.io" / "package.json"
    if pkg.exists():
        sio = json.loads(pkg.read_text())["version"]
    stripped = None
    if SIOLOOP_BIN.exists():
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "bench_server"
            shutil.copy(SIOLOOP_BIN, out)
            if subprocess.run(["strip", out], timeout=60).returncode == 0:
                stripped = out.stat().st_size
    return {
        "cpu": model, "nproc": len(os.sched_getaffinity(0)), "kernel": platform.release(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "rustc": cmd_out(["rustc", "--version"]), "node": cmd_out(["node", "--version"]),
        "socket.io": sio, "socketioxide": sioxide,
        "sioloop": cmd_out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "sioloop_stripped_bytes": stripped, "nofile": nofile,
    }


# ---- report ----------------------------------------------------------------------------


def fmt(v: float | None) -> str:
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def rows_for(name: str, args: list[str]) -> list[tuple[str, list[str], float]]:
    """Table rows for a scenario: (label, loadgen JSON keys, scale). Several keys make one
    cell "a / b"; scale converts units (µs -> ms)."""
    a = dict(zip(args[::2], args[1::2]))
    n = a.get("--clients", "?")
    if base_name(name) == "storm":
        p = f"storm {n}, {a.get('--concurrency', '?')} in flight"
        return [(f"{p}: all back, s", ["reconnect_s"], 1),
                (f"{p}: handshake p50 / p99 ms", ["lat_p50_us", "lat_p99_us"], 1e-3),
                (f"{p}: server CPU µs/reconnect", ["server_cpu_us_per_reconnect"], 1),
                (f"{p}: server CPU µs/disconnect", ["server_cpu_us_per_disconnect"], 1),
                (f"{p}: failed handshakes / SYNs dropped", ["failed_handshakes", "listen_drops"],
                 1)]
    if base_name(name) == "idle-ping":
        p = f"idle-ping {n}"
        return [(f"{p}: server CPU µs/ping", ["server_cpu_us_per_ping"], 1),
                (f"{p}: ping rounds in the window", ["ping_rounds"], 1)]
    if name == "idle":
        return [(f"connect {n}: server CPU µs/connection", ["server_cpu_us_per_connect"], 1),
                (f"connect {n}: connects/s", ["connects_per_s"], 1),
                (f"idle {n}: RSS KiB/connection", ["rss_kib_per_conn"], 1),
                (f"idle {n}: server RSS MiB", ["server_rss_kib_end"], 1 / 1024)]
    if name.startswith("fanout"):
        p = f"fan-out {n}, {a.get('--in-flight', '?')} in flight"
        return [(f"{p}: server CPU µs/delivery", ["server_cpu_us_per_delivery"], 1),
                (f"{p}: deliveries/s", ["deliveries_per_s"], 1),
                (f"{p}: p50 / p99 ms", ["lat_p50_us", "lat_p99_us"], 1e-3),
                (f"{p}: loadgen CPU s", ["loadgen_cpu_s"], 1)]
    if name == "binary":
        p = f"binary {int(a.get('--size', 65536)) // 1024} KiB ×{n}"
        return [(f"{p}: server CPU µs/delivery", ["server_cpu_us_per_delivery"], 1),
                (f"{p}: deliveries/s", ["deliveries_per_s"], 1)]
    if name in ("echo", "polling"):
        p = f"{name} ×{n}"
        return [(f"{p}: server CPU µs/ack", ["server_cpu_us_per_op"], 1),
                (f"{p}: acks/s", ["ops_per_s"], 1),
                (f"{p}: p50 / p99 ms", ["lat_p50_us", "lat_p99_us"], 1e-3)]
    return [(f"{name}: ops/s", ["ops_per_s"], 1)]


# Rows whose sioloop/peer ratio means nothing.
NO_RATIO = ("loadgen CPU", "failed handshakes", "ping rounds")


def report(env: dict, records: list[dict], servers: list[str], scen: dict, runs: int) -> str:
    out = []
    size = env["sioloop_stripped_bytes"]
    out.append(f"Machine: {env['cpu']}, nproc {env['nproc']}, Linux {env['kernel']}, "
               f"load average at start {' '.join(env['loadavg'])}")
    out.append(f"Versions: {env['rustc']}, node {env['node']}, socket.io {env['socket.io']}, "
               f"socketioxide {env['socketioxide']}, sioloop {env['sioloop']}")
    if size:
        out.append(f"sioloop bench_server, release, stripped: {size:,} bytes "
                   f"({size / 2**20:.2f} MiB)")
    out.append(f"Medians over {runs} run(s); server on core {SERVER_CORE}, "
               f"loadgen on core {LOADGEN_CORE}; open-file limit {env.get('nofile', '?')}.")
    if any(base_name(n) == "idle-ping" for n in scen):
        heartbeat = " ".join(f"{k}={v}" for k, v in IDLE_PING_ENV.items())
        out.append(f"idle-ping: every server runs with {heartbeat}; the floor is "
                   "benches/floor (ping/pong only).")
    out.append("")

    # The floor gets a column only when a scenario it runs is in the table.
    servers = [s for s in servers if any(applies(s, n) for n in scen)]
    ratio_cols = [s for s in ("sioloop-recovery", "socketioxide", "node", "floor")
                  if s in servers and "sioloop" in servers]
    head = ["metric", *servers, *(f"sioloop/{s}" for s in ratio_cols)]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    notes = []
    for name, args in scen.items():
        for label, keys, scale in rows_for(name, args):
            med: dict[str, list[float | None]] = {}
            cells = []
            for s in servers:
                recs = [r for r in records if r["server"] == s and r["scenario"] == name]
                ok = [r["result"] for r in recs if "error" not in r]
                if not ok:
                    cells.append("fail" if recs else "–")
                    continue
                vals = []
                for k in keys:
                    xs = [r[k] for r in ok if isinstance(r.get(k), (int, float))]
                    vals.append(statistics.median(xs) * scale if xs else None)
                med[s] = vals
                mark = "*" if len(ok) < len(recs) else ""
                cells.append(" / ".join(map(fmt, vals)) + mark)
            for s in ratio_cols:
                a, b = med.get("sioloop"), med.get(s)
                if not a or not b or any(x in label for x in NO_RATIO):
                    cells.append("")
                    continue
                rs = [x / y if x is not None and y else None for x, y in zip(a, b)]
                cells.append(" / ".join(fmt(r) if r is not None else "–" for r in rs))
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("\n`*` some runs failed, median of the others; `fail` every run failed.")
    for r in records:
        errs = r.get("result", {}).get("errors")
        if "error" in r:
            notes.append(f"- run {r['run']} {r['server']} {r['scenario']}: {r['error']}")
        elif errs:
            notes.append(f"- run {r['run']} {r['server']} {r['scenario']}: loadgen errors={errs}")
    if notes:
        out.append("Failures and errors:\n" + "\n".join(notes))
    return "\n".join(out)


# ---- main ------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--scenarios",
                    help="comma-separated, default all; a name without its count "
                         "(storm, idle-ping, fanout) selects every count")
    ap.add_argument("--quick", action="store_true",
                    help="1 run, 2 s scenarios, 1000 idle clients (1000 and 2000 for storm "
                         "and idle-ping): a smoke test")
    ap.add_argument("--loadgen", type=Path,
                    help="use this load generator instead of building benches/loadgen")
    opts = ap.parse_args()

    nofile = raise_nofile()
    scen = scenarios(opts.quick, nofile)
    runs = 1 if opts.quick else opts.runs
    servers = [s for s in opts.servers.split(",") if s]
    asked = opts.scenarios.split(",") if opts.scenarios else list(scen)
    pick = lambda n: [k for k in scen if k == n or (n not in scen and base_name(k) == n)]
    for bad in [s for s in servers if s not in SERVERS] + [n for n in asked if not pick(n)]:
        sys.exit(f"unknown server or scenario {bad!r}; servers: {SERVERS}, scenarios: {list(scen)}")
    names = list(dict.fromkeys(k for n in asked for k in pick(n)))
    scen = {n: scen[n] for n in names}
    if not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("needs CPUs 0 and 1 (server on one, loadgen on the other)")

    if {"sioloop", "sioloop-recovery"} & set(servers):
        run_step("build sioloop bench_server",
                 ["cargo", "build", "--release", "--locked", "--example", "bench_server"], ROOT, BUILD_TIMEOUT)
    if "socketioxide" in servers:
        run_step("build socketioxide-bench", ["cargo", "build", "--release", "--locked"],
                 SOCKETIOXIDE_DIR, BUILD_TIMEOUT)
    if "node" in servers and not (NODE_DIR / "node_modules").exists():
        run_step("npm ci", ["npm", "ci"], NODE_DIR, 600)
    if "floor" in servers and any(applies("floor", n) for n in scen):
        run_step("build floor", ["cargo", "build", "--release", "--locked", "--manifest-path",
                                 FLOOR_DIR / "Cargo.toml"], ROOT, BUILD_TIMEOUT)
    loadgen = opts.loadgen
    if loadgen is None:
        run_step("build loadgen", ["cargo", "build", "--release", "--locked", "--manifest-path",
                                   LOADGEN_DIR / "Cargo.toml"], ROOT, BUILD_TIMEOUT)
        loadgen = LOADGEN_BIN
    loadgen = loadgen.resolve()

    env = environment(nofile)
    results_dir = BENCHES / "results"
    results_dir.mkdir(exist_ok=True)
    path = results_dir / f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    records = []
    # Written line by line, so an interrupted session keeps what it measured.
    with path.open("w") as f:
        f.write(json.dumps({"kind": "env", **env, "runs": runs, "quick": opts.quick}) + "\n")
        for run in range(1, runs + 1):
            for s in servers:
                for name, args in scen.items():
                    if not applies(s, name):
                        continue
                    log(f"-- run {run}/{runs} {s} {name}")
                    senv = server_env(name)
                    rec = {"kind": "result", "run": run, "server": s, "scenario": name,
                           "args": args, "server_env": senv,
                           **run_one(loadgen, s, args, senv)}
                    if "error" in rec:
                        log(f"   FAIL {rec['error']}\n{rec.get('stderr_tail', '')}")
                    records.append(rec)
                    f.write(json.dumps(rec) + "\n")
                    f.flush()
                    time.sleep(1)  # let the previous server's sockets and CPU settle
    log(f"raw results: {path}")
    print(report(env, records, servers, scen, runs))
    failed = [f"{r['server']}/{r['scenario']}" for r in records if "error" in r]
    if failed:
        # The table still prints; the exit status tells CI that a run failed.
        sys.exit(f"failed runs: {', '.join(failed)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # servers are stopped by the finally blocks and atexit
        sys.exit(130)
