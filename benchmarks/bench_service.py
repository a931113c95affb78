"""Load test of the HTTP service on loopback: N concurrent clients send a mix of clean,
flagged and hostile clips to ``framescan serve`` (a subprocess) and every answer is checked.

    python benchmarks/bench_service.py                      # 8 clients, 200 requests, 2 workers
    python benchmarks/bench_service.py --requests 60 --json out.json

Bounded: at most ``--requests`` requests and ``--time-limit`` seconds (then the clients stop
taking new requests), 127.0.0.1 only; the server is stopped at the end whatever happens.
Checks (exit 1 if one fails): no 5xx, and every answer is a report (200), an error report
(400/413/415, refused before scanning) or a 429 with Retry-After. Prints status counts,
p50/p95 latency (overall and per clip kind), throughput, and the server's RSS at start and
end (the server process, and its worker processes).

Clips: small generated clips (``framescan.synth.write_clip``; 360x640, 4 s, 15 fps), clean
and flagged, and the hostile corpus of tests/corpus/hostile.py (each case with its limit
overrides as query parameters). Kinds are drawn with a fixed seed: 40 % clean, 30 % flagged,
30 % hostile.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
import psutil  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
MIX = (("clean", 0.4), ("flagged", 0.3), ("hostile", 0.3))


@dataclass
class Clip:
    kind: str
    name: str
    data: bytes
    params: dict[str, Any]


@dataclass
class Result:
    kind: str
    name: str
    status: int
    seconds: float
    ok: bool
    note: str = ""
    decision: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clips(tmp: Path, variants: int) -> list[Clip]:
    from corpus.hostile import build_corpus

    from framescan.synth import write_clip

    clips: list[Clip] = []
    for i in range(variants):
        for kind, flagged in (("clean", None), ("flagged", (1.0, 3.0))):
            path = write_clip(tmp / f"{kind}{i}.mp4", width=360, height=640, seconds=4, fps=15, flagged=flagged)
            clips.append(Clip(kind, path.name, path.read_bytes(), {}))
    for case in build_corpus(tmp / "hostile"):
        clips.append(Clip("hostile", case.name, case.path.read_bytes(), dict(case.limits or {})))
    return clips


def rss(proc: psutil.Process) -> dict[str, float]:
    children = proc.children(recursive=True)
    workers = 0
    for c in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            workers += c.memory_info().rss
    return {
        "server_mib": proc.memory_info().rss / 2**20,
        "workers_mib": workers / 2**20,
        "workers": len(children),
    }


def check(status: int, response: httpx.Response) -> tuple[bool, str, str | None]:
    """Is this answer one of: a report, an error report, a 429 with Retry-After?"""
    if status == 429:
        ra = response.headers.get("retry-after")
        return (ra is not None and ra.isdigit()), f"429 Retry-After={ra}", None
    try:
        body = response.json()
    except ValueError:
        return False, f"{status}: not JSON", None
    is_report = isinstance(body, dict) and body.get("schema") == "framescan.report/1"
    if status == 200 and is_report:
        return True, body["status"], body["decision"] if body["status"] != "error" else "error"
    if status in (400, 413, 415) and is_report and body.get("status") == "error":
        return True, f"refused {body['error']['code']}", "error"
    return False, f"{status}: {str(body)[:200]}", None


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="framescan-bench-service-") as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        clips = make_clips(tmp, args.variants)
        print(f"clips: {len(clips)} made in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        by_kind = {k: [c for c in clips if c.kind == k] for k, _ in MIX}
        kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=args.requests)
        plan = [rng.choice(by_kind[k]) for k in kinds]

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "FRAMESCAN_TOKENS": f"{TOKEN}:bench", "FRAMESCAN_HOME": str(tmp / "home")}
        cmd = [
            sys.executable,
            "-m",
            "framescan.cli.serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--queue",
            str(args.queue),
            "--tmp-dir",
            str(tmp),
            "--deadline",
            "120",
        ]
        log_file = open(tmp / "server.log", "w")  # noqa: SIM115
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        proc = psutil.Process(server.pid)
        try:
            t_start = time.monotonic()
            ready = False
            while time.monotonic() - t_start < 180 and server.poll() is None:
                try:
                    if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                        ready = True
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
            if not ready:
                raise RuntimeError(f"server not ready: {(tmp / 'server.log').read_text()[-2000:]}")
            startup = time.monotonic() - t_start
            # one request per kind to warm up (not counted)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=180) as c:
                for k in ("clean", "flagged"):
                    c.post("/v1/scan", content=by_kind[k][0].data)
            rss_start = rss(proc)

            results: list[Result] = []
            lock = threading.Lock()
            next_index = [0]
            stop_at = time.monotonic() + args.time_limit

            def client_loop() -> None:
                with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=180) as c:
                    while time.monotonic() < stop_at:
                        with lock:
                            i = next_index[0]
                            if i >= len(plan):
                                return
                            next_index[0] += 1
                        clip = plan[i]
                        params = {"deadline": 120, "name": clip.name, **clip.params}
                        t = time.perf_counter()
                        try:
                            r = c.post("/v1/scan", params=params, content=clip.data)
                        except httpx.TransportError as ex:
                            res = Result(clip.kind, clip.name, 0, time.perf_counter() - t, False, repr(ex))
                        else:
                            ok, note, decision = check(r.status_code, r)
                            res = Result(
                                clip.kind, clip.name, r.status_code, time.perf_counter() - t, ok, note, decision
                            )
                        with lock:
                            results.append(res)

            t_load = time.perf_counter()
            threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.time_limit + 200)
            wall = time.perf_counter() - t_load
            rss_end = rss(proc)
            metrics = httpx.get(url + "/metrics", timeout=10).text
            ready_after = httpx.get(url + "/readyz", timeout=10).status_code
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
            log_file.close()
        leftovers = [p.name for p in tmp.glob("framescan-uploads-*")]

    lat = sorted(r.seconds for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    decisions: dict[str, int] = {}
    for r in results:
        if r.decision:
            decisions[r.decision] = decisions.get(r.decision, 0) + 1

    def pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]

    per_kind = {}
    for k, _ in MIX:
        v = sorted(r.seconds for r in results if r.kind == k)
        per_kind[k] = {"n": len(v), "p50_s": pct(v, 0.5), "p95_s": pct(v, 0.95)}
    bad = [r for r in results if not r.ok]
    five_xx = [r for r in results if r.status >= 500 or r.status == 0]

    def metric(name: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name + " "))

    scans = metric("framescan_scan_duration_seconds_count")
    worker_restarts = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("framescan_worker_restarts_total{")
    )
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "config": {
            "requests": args.requests,
            "clients": args.clients,
            "workers": args.workers,
            "queue": args.queue,
            "time_limit_s": args.time_limit,
            "seed": args.seed,
        },
        "startup_s": round(startup, 2),
        "completed": len(results),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(results) / wall, 3) if wall else None,
        "latency_s": {"p50": pct(lat, 0.5), "p95": pct(lat, 0.95), "max": lat[-1] if lat else None},
        "per_kind": per_kind,
        "server_side": {
            "scans": scans,
            "mean_scan_s": metric("framescan_scan_duration_seconds_sum") / scans if scans else None,
            "mean_queue_wait_s": metric("framescan_queue_wait_seconds_sum") / scans if scans else None,
        },
        "statuses": statuses,
        "decisions": decisions,
        "invalid": [f"{r.kind}/{r.name}: {r.note}" for r in bad],
        "five_xx": len(five_xx),
        "rss_start": rss_start,
        "rss_end": rss_end,
        "worker_restarts": worker_restarts,
        "ready_after": ready_after,
        "upload_dirs_left": leftovers,
    }


def render(res: dict[str, Any]) -> str:
    c = res["config"]
    lines = [
        f"framescan service load test: {res['completed']}/{c['requests']} requests, {c['clients']} clients, "
        f"{c['workers']} workers, queue {c['queue']} ({res['machine']['cpus']} CPUs)",
        f"  wall {res['wall_s']:.1f} s, throughput {res['throughput_rps']:.2f} req/s "
        f"({60 * res['throughput_rps']:.0f} clips/min); server startup {res['startup_s']:.1f} s",
        f"  latency p50 {res['latency_s']['p50']:.2f} s, p95 {res['latency_s']['p95']:.2f} s, "
        f"max {res['latency_s']['max']:.2f} s",
    ]
    ss = res["server_side"]
    if ss["scans"]:
        lines.append(
            f"  server side: {ss['scans']:.0f} scans (warm-up included), mean {ss['mean_scan_s']:.2f} s in a worker, "
            f"mean {ss['mean_queue_wait_s']:.2f} s waiting for one"
        )
    for k, v in res["per_kind"].items():
        lines.append(f"    {k:<8} n={v['n']:<4} p50 {v['p50_s']:.2f} s  p95 {v['p95_s']:.2f} s")
    lines.append(f"  statuses {res['statuses']}  decisions {res['decisions']}")
    lines.append(
        f"  5xx: {res['five_xx']}, invalid answers: {len(res['invalid'])}, worker restarts: {res['worker_restarts']:.0f}, "
        f"ready after: {res['ready_after']}"
    )
    for key in ("rss_start", "rss_end"):
        r = res[key]
        lines.append(
            f"  RSS {key[4:]:<5} server {r['server_mib']:.0f} MiB, {r['workers']} workers {r['workers_mib']:.0f} MiB"
        )
    for item in res["invalid"][:20]:
        lines.append(f"  INVALID {item}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--queue", type=int, default=8)
    p.add_argument("--variants", type=int, default=3, help="distinct clean and flagged clips (default 3 each)")
    p.add_argument("--time-limit", type=float, default=900.0, help="stop taking new requests after S seconds")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = p.parse_args(argv)
    res = run(args)
    print(render(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    failed = res["five_xx"] or res["invalid"] or res["ready_after"] != 200 or res["upload_dirs_left"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
