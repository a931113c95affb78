"""``framescan serve``: the scanning service over HTTP (FastAPI + uvicorn; see docs/service.md)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .main import EXIT_CONFIG, UsageError
from .scan import add_limit_options, add_signal_options, at_least_one, checked, signal_kwargs

NAME = "serve"
DESCRIPTION = """\
Serve scans over HTTP: POST /v1/scan with a clip answers with its report (or 202 and a job
to poll), over warm isolated scan workers, with bounded queues, upload limits and bearer
tokens. Needs the serve extra (pip install -e ".[serve]"); reference: docs/service.md.

API tokens come from a JSON file {"token": "tenant"} (--tokens) and/or $FRAMESCAN_TOKENS
("tok1:tenantA,tok2:tenantB"); the server refuses to start without any. Model files are
verified (sha256) before the port is opened; the workers then start in the background and
/readyz turns 200 when they are up. On start it prints the address it listens on, then a
"ready" line once the workers are up."""
EPILOG = "exit codes: 0 stopped, 2 usage error, 4 model or configuration error (or the workers did not start)"
EXIT_OK = 0
#: How often the start-up watch looks whether uvicorn has bound its socket (seconds).
_POLL = 0.05

log = logging.getLogger(__name__)


def _port(n: int) -> None:
    if not 0 <= n <= 65535:
        raise ConfigError(f"a port is 0-65535, got {n}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=checked(int, _port), default=8080, help="port (default 8080; 0: any free port, printed on start)"
    )
    p.add_argument("--workers", type=int, default=2, metavar="N", help="isolated scan worker processes (default 2)")
    p.add_argument(
        "--queue", type=int, default=8, metavar="N", help="clips that may wait for a worker before 429 (default 8)"
    )
    p.add_argument("--tokens", metavar="FILE", help="JSON {token: tenant} (also $FRAMESCAN_TOKENS='tok:tenant,...')")
    p.add_argument("--policy-dir", metavar="DIR", help="policy files NAME.json that ?policy=NAME picks from")
    p.add_argument("--policy", metavar="FILE", help="policy for requests that name none (default: built-in)")
    p.add_argument("--fps", type=float, metavar="N", help="default sampling rate, at most 30 (default 2 fps)")
    add_signal_options(p)
    p.add_argument(
        "--banks", metavar="DB", help="hash-bank database (default: $FRAMESCAN_HOME/banks.sqlite if present)"
    )
    p.add_argument("--no-banks", action="store_true", help="do not match against hash banks")
    p.add_argument(
        "--max-upload-bytes",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest upload accepted (default 512 MiB, where 'framescan scan' allows 2 GiB files); it is the "
        "service's max_file_bytes limit and wins over --limit max_file_bytes",
    )
    p.add_argument(
        "--receive-timeout", type=float, default=300.0, metavar="S", help="seconds to receive a whole body (300)"
    )
    p.add_argument(
        "--min-upload-rate", type=float, default=32 * 1024, metavar="B", help="bytes/s a body must average (32768)"
    )
    p.add_argument(
        "--rate-grace", type=float, default=10.0, metavar="S", help="seconds before the minimum rate applies (10)"
    )
    p.add_argument(
        "--deadline", type=float, default=30.0, metavar="S", help="default seconds to wait before a 202 (30)"
    )
    p.add_argument("--max-deadline", type=float, default=300.0, metavar="S", help="largest ?deadline= honoured (300)")
    add_limit_options(p)
    p.add_argument(
        "--job-ttl", type=float, default=3600.0, metavar="S", help="seconds a finished job stays readable (3600)"
    )
    p.add_argument("--max-jobs", type=int, default=10_000, metavar="N", help="jobs kept for polling (10000)")
    p.add_argument(
        "--max-profiles", type=int, default=4, metavar="N", help="extra worker pools for ?policy/?fps profiles (4)"
    )
    p.add_argument("--profile-workers", type=int, default=1, metavar="N", help="workers in each of those pools (1)")
    p.add_argument(
        "--max-connections",
        type=checked(int, at_least_one),
        default=256,
        metavar="N",
        help="open connections before 503 (256)",
    )
    p.add_argument("--tmp-dir", metavar="DIR", help="where the private upload directory is made (default: $TMPDIR)")
    p.add_argument("--access-log", action="store_true", help="log every request")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="serve scans over HTTP",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    return p


def build_config(args: argparse.Namespace) -> Any:
    from ..service import DEFAULT_MAX_UPLOAD, ServiceConfig, load_tokens
    from .scan import parse_limits

    tokens = load_tokens(args.tokens)  # an unreadable token file is a configuration error (exit 4)
    try:  # ServiceConfig checks the option values given: a bad one is a usage error (exit 2)
        limits = parse_limits(args)
        if args.max_upload_bytes is not None:
            limits = limits.updated(max_file_bytes=args.max_upload_bytes)
        elif "max_file_bytes" not in dict(args.limit):
            limits = limits.updated(max_file_bytes=DEFAULT_MAX_UPLOAD)
        return ServiceConfig(
            tokens=tokens,
            workers=args.workers,
            queue=args.queue,
            limits=limits,
            receive_timeout=args.receive_timeout,
            min_upload_rate=args.min_upload_rate,
            rate_grace=args.rate_grace,
            default_deadline=args.deadline,
            max_deadline=args.max_deadline,
            policy_dir=Path(args.policy_dir) if args.policy_dir else None,
            default_policy=Path(args.policy) if args.policy else None,
            fps=args.fps,
            **signal_kwargs(args),
            banks=False if args.no_banks else args.banks,
            max_profiles=args.max_profiles,
            profile_workers=args.profile_workers,
            job_ttl=args.job_ttl,
            max_jobs=args.max_jobs,
            tmp_root=Path(args.tmp_dir) if args.tmp_dir else None,
        )
    except ConfigError as ex:
        raise UsageError(ex.message) from ex


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..service import ScanService, create_app
    except ImportError as ex:
        raise ConfigError(f'framescan serve needs the serve extra: pip install -e ".[serve]" ({ex})') from ex

    config = build_config(args)
    if args.policy:
        from ..policy import load_policy

        load_policy(args.policy)
    svc = ScanService(config)
    try:
        svc.models = svc._verify_models()  # a wrong sha256 or a missing model: exit 4 before binding
    except BaseException:
        svc.close()
        raise
    app = create_app(svc)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
            access_log=args.access_log,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=10,
            limit_concurrency=args.max_connections,
            server_header=False,
        )
    )
    failed = threading.Event()

    def watch_startup() -> None:
        """Say where the server listens once it does, then that it is ready once the workers
        are up (or stop it when they cannot start)."""
        while not server.started and not server.should_exit:
            time.sleep(_POLL)
        url = _url(server) if server.started else None
        if url:
            n = config.workers
            _say(f"listening on {url} ({n} scan worker{'s' * (n != 1)}, queue {config.queue}); starting the workers")
        svc.wait_started(timeout=600)
        if svc.state == "failed":
            failed.set()
            server.should_exit = True
        elif url and svc.state == "ready":
            _say(f"ready: POST clips to {url}/v1/scan (API docs at {url}/docs); Ctrl-C stops")

    threading.Thread(target=watch_startup, name="framescan-startup-watch", daemon=True).start()
    server.run()
    if failed.is_set():
        print(f"framescan: error: the workers did not start: {svc.startup_error}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _say(line: str) -> None:
    print(f"framescan serve: {line}", file=sys.stderr, flush=True)


def _url(server: Any) -> str | None:
    """The address the started uvicorn server listens on (the real port when --port 0)."""
    for s in server.servers:
        for sock in s.sockets:
            host, port = sock.getsockname()[:2]
            return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m framescan.cli.serve ...``: the same as ``framescan serve ...`` (one dispatcher)."""
    from .main import main as framescan_main

    return framescan_main([NAME, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
