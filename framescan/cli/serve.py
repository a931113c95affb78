"""``framescan serve``: the scanning service over HTTP (FastAPI + uvicorn; see docs/service.md).

Needs the ``serve`` extra (``pip install "framescan[serve]"``). API tokens come from a JSON
file ``{token: tenant}`` (``--tokens``) and/or ``$FRAMESCAN_TOKENS`` (``tok1:tenantA,...``);
the server refuses to start without any. Model files are verified (sha256) before the port
is opened; the workers then start in the background and ``/readyz`` turns 200 when they are up.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .scan import add_signal_options, models_from_args

NAME = "serve"
EXIT_OK = 0
EXIT_CONFIG = 4

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--workers", type=int, default=2, help="isolated scan worker processes (default 2)")
    p.add_argument("--queue", type=int, default=8, help="clips that may wait for a worker before 429 (default 8)")
    p.add_argument("--tokens", metavar="FILE", help="JSON {token: tenant} (also $FRAMESCAN_TOKENS='tok:tenant,...')")
    p.add_argument("--policy-dir", metavar="DIR", help="policy files NAME.json that ?policy=NAME picks from")
    p.add_argument("--policy", metavar="FILE", help="policy for requests that name none (default: built-in)")
    p.add_argument("--fps", type=float, help="default sampling rate (default 2 fps)")
    add_signal_options(p)
    p.add_argument(
        "--banks", metavar="DB", help="hash-bank database (default: $FRAMESCAN_HOME/banks.sqlite if present)"
    )
    p.add_argument("--no-banks", action="store_true", help="do not match against hash banks")
    p.add_argument(
        "--max-upload-bytes", type=int, default=None, help="upload size limit (default 512 MiB; = max_file_bytes)"
    )
    p.add_argument("--receive-timeout", type=float, default=300.0, help="seconds to receive a whole body (300)")
    p.add_argument("--min-upload-rate", type=float, default=32 * 1024, help="bytes/s a body must average (32768)")
    p.add_argument("--rate-grace", type=float, default=10.0, help="seconds before the minimum rate applies (10)")
    p.add_argument("--deadline", type=float, default=30.0, help="default seconds to wait before a 202 (30)")
    p.add_argument("--max-deadline", type=float, default=300.0, help="largest ?deadline= honoured (300)")
    p.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a resource limit (max_pixels, max_side, max_duration, max_frames, max_streams, "
        "max_seconds_per_clip, max_file_bytes); repeatable",
    )
    p.add_argument("--timeout", type=float, help="wall-clock seconds per clip (= --limit max_seconds_per_clip=S)")
    p.add_argument("--job-ttl", type=float, default=3600.0, help="seconds a finished job stays readable (3600)")
    p.add_argument("--max-jobs", type=int, default=10_000, help="jobs kept for polling (10000)")
    p.add_argument("--max-profiles", type=int, default=4, help="extra worker pools for ?policy/?fps profiles (4)")
    p.add_argument("--profile-workers", type=int, default=1, help="workers in each of those pools (1)")
    p.add_argument("--max-connections", type=int, default=256, help="open connections before 503 (256)")
    p.add_argument("--tmp-dir", metavar="DIR", help="where the private upload directory is made (default: $TMPDIR)")
    p.add_argument("--access-log", action="store_true", help="log every request")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(NAME, help="serve scans over HTTP", description=__doc__)
    add_arguments(p)
    return p


def build_config(args: argparse.Namespace) -> Any:
    from ..service import DEFAULT_MAX_UPLOAD, ServiceConfig, load_tokens
    from .scan import parse_limits

    limits = parse_limits(args)
    if args.max_upload_bytes is not None:
        limits = limits.updated(max_file_bytes=args.max_upload_bytes)
    elif not any(item.strip().startswith("max_file_bytes=") for item in args.limit):
        limits = limits.updated(max_file_bytes=DEFAULT_MAX_UPLOAD)
    return ServiceConfig(
        tokens=load_tokens(args.tokens),
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
        models=models_from_args(args),
        ocr=args.ocr,
        lexicons=args.lexicon,
        banks=False if args.no_banks else args.banks,
        max_profiles=args.max_profiles,
        profile_workers=args.profile_workers,
        job_ttl=args.job_ttl,
        max_jobs=args.max_jobs,
        tmp_root=Path(args.tmp_dir) if args.tmp_dir else None,
    )


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..service import ScanService, create_app
    except ImportError as ex:
        raise ConfigError(f"framescan serve needs the 'serve' extra: pip install 'framescan[serve]' ({ex})") from ex

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
        svc.wait_started(timeout=600)
        if svc.state == "failed":
            failed.set()
            server.should_exit = True

    threading.Thread(target=watch_startup, name="framescan-startup-watch", daemon=True).start()
    server.run()
    if failed.is_set():
        print(f"framescan: error: the workers did not start: {svc.startup_error}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m framescan.cli.serve ...``: the same as ``framescan serve ...`` (one dispatcher)."""
    from .main import main as framescan_main

    return framescan_main([NAME, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
