"""The HTTP front: the FastAPI app (``create_app``) and its routes, over ``ScanService``."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from .._version import __version__
from .config import ServiceConfig
from .core import Job, Rejected, ScanService, detail
from .metrics import MetricsMiddleware
from .upload import TrackedReceive, drain_refused, receive_upload

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
#: Headers of the pages and images a reviewer opens: not cached by shared caches, not sniffed.
_PAGE_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _json(status: int, body: Any, headers: dict[str, str] | None = None, close: bool = False) -> JSONResponse:
    h = dict(headers or {})
    if close:
        h["Connection"] = "close"  # the body was not read: do not drain it for keep-alive
    return JSONResponse(body, status_code=status, headers=h)


_SCAN_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The clip: the raw body (any Content-Type but multipart), or the `file` field of a "
        "multipart/form-data body. Recognised by its first bytes, not by name or Content-Type.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


def create_app(config: ServiceConfig | ScanService, *, start: bool = True) -> FastAPI:
    """The ASGI app. ``config`` may be a ready ``ScanService`` (tests inspect it as
    ``app.state.service``). The workers start with the app (lifespan), in the background:
    ``/readyz`` says when they are up."""
    svc = config if isinstance(config, ScanService) else ScanService(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start and svc.state == "starting" and not svc._started.is_set():
            svc.start(background=True)
        try:
            yield
        finally:
            await asyncio.to_thread(svc.close)

    app = FastAPI(
        title="framescan",
        version=__version__,
        description="Video content-safety scanning over HTTP. See docs/service.md.",
        lifespan=lifespan,
    )
    app.state.service = svc
    metrics = svc.metrics

    def reject(ex: Rejected, close: bool) -> JSONResponse:
        metrics.inc("framescan_rejections_total", reason=ex.reason)
        if ex.body.get("status") == "error":
            svc.count_report(ex.body)
        return _json(ex.status, ex.body, ex.headers, close=close)

    @app.exception_handler(RequestValidationError)
    async def _bad_params(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.inc("framescan_rejections_total", reason="bad_request")
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return _json(400, {"detail": errors}, close=request.method == "POST")

    async def job_response(job: Job, wait: float, replayed: bool = False, close: bool = False) -> JSONResponse:
        if job.finished is None and wait > 0 and job.future is not None:
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.future)), timeout=wait)
            except asyncio.TimeoutError:
                pass
            except asyncio.CancelledError:
                if not job.future.cancelled():
                    raise
        if job.finished is None and job.future is not None and job.future.cancelled():
            job.failure = (503, "the service is shutting down")
        headers = {"X-Job-Id": job.id, "Location": f"/v1/jobs/{job.id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        if job.report is not None:
            return _json(200, job.report, headers, close=close)
        if job.failure is not None:
            return _json(job.failure[0], {**job.summary(), "detail": job.failure[1]}, headers, close=close)
        headers["Retry-After"] = "1"
        return _json(202, job.summary(), headers, close=close)

    @app.post(
        "/v1/scan",
        summary="Scan a clip",
        openapi_extra=_SCAN_BODY_DOC,
        responses={
            200: {"description": "The clip report (framescan.report/1), also for clips that could not be scanned"},
            202: {"description": "Still scanning at the deadline: poll the job"},
            400: {"description": "Bad parameters, malformed multipart, or an empty upload (error report)"},
            401: {"description": "No token or an unknown token"},
            408: {"description": "The body arrived too slowly"},
            413: {"description": "The body passed the size limit (error report, LIMIT_EXCEEDED)"},
            415: {"description": "The body does not start like a supported container (error report)"},
            429: {"description": "Every worker busy and the queue full: retry after Retry-After"},
            503: {"description": "Not ready yet (workers starting)"},
        },
    )
    async def scan(
        request: Request,
        policy: str | None = Query(None, description="name of a policy file in the server's policy directory"),
        fps: float | None = Query(None, gt=0, description="frames sampled per second (default: the server's)"),
        deadline: float | None = Query(None, ge=0, description="seconds to wait for the report before a 202"),
        name: str | None = Query(None, max_length=200, description="clip name used in the report"),
        max_file_bytes: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_pixels: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_side: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_duration: float | None = Query(None, gt=0, description="tighten the server's limit"),
        max_frames: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_streams: int | None = Query(None, gt=0, description="tighten the server's limit"),
        max_seconds_per_clip: float | None = Query(None, gt=0, description="tighten the server's limit"),
    ) -> Response:
        try:
            tenant = svc.tenant_for(request.headers.get("authorization"))
            if not svc.ready:
                raise Rejected(503, "not_ready", detail("the service is starting"), {"Retry-After": "2"})
            profile = svc.profile_for(policy, fps)
            limits = svc.limits_for(
                {
                    "max_file_bytes": max_file_bytes,
                    "max_pixels": max_pixels,
                    "max_side": max_side,
                    "max_duration": max_duration,
                    "max_frames": max_frames,
                    "max_streams": max_streams,
                    "max_seconds_per_clip": max_seconds_per_clip,
                }
            )
            wait = svc.deadline_for(deadline)
            key = request.headers.get("idempotency-key")
            if key is not None and not _IDEMPOTENCY_KEY.match(key):
                raise Rejected(400, "bad_request", detail("Idempotency-Key must be 1-255 visible ASCII characters"))
            if key is not None:
                existing = svc.job_for_key(tenant, key)
                if existing is not None:
                    return await job_response(existing, wait, replayed=True, close=True)
        except Rejected as ex:
            return reject(ex, close=True)
        if not svc.try_admit():
            ex = Rejected(
                429,
                "busy",
                detail("every worker is busy and the queue is full"),
                {"Retry-After": str(svc.retry_after())},
            )
            return reject(ex, close=True)
        receive = TrackedReceive(request.receive)
        try:
            upload = await receive_upload(receive, request.headers, svc, limits, name)
        except Rejected as ex:
            svc.abandon_upload()
            await drain_refused(receive, ex.status, request.headers)
            return reject(ex, close=True)
        except BaseException:
            svc.abandon_upload()
            raise
        job, created = svc.submit(tenant, key, upload, profile, limits)
        return await job_response(job, wait, replayed=not created)

    @app.get(
        "/v1/jobs/{job_id}",
        summary="A scan job: 200 with the report when done, 202 while queued or scanning",
        responses={202: {"description": "Still queued or scanning"}, 404: {"description": "No such job"}},
    )
    async def get_job(
        request: Request,
        job_id: str,
        wait: float = Query(0.0, ge=0, description="seconds to wait for the report (long poll)"),
    ) -> Response:
        try:
            tenant = svc.tenant_for(request.headers.get("authorization"))
        except Rejected as ex:
            return reject(ex, close=False)
        job = svc.job(job_id, tenant)
        if job is None:  # another tenant's job is not found either
            return _json(404, detail("no such job"))
        return await job_response(job, min(wait, svc.config.max_poll_wait))

    async def finished_job(request: Request, job_id: str) -> Job | Response:
        """The caller's job when it has a report; else the response to give (401, 404, 202...)."""
        try:
            tenant = svc.tenant_for(request.headers.get("authorization"))
        except Rejected as ex:
            return reject(ex, close=False)
        job = svc.job(job_id, tenant)
        if job is None:  # another tenant's job is not found either
            return _json(404, detail("no such job"))
        if job.report is None:
            return await job_response(job, 0.0)
        return job

    @app.get(
        "/v1/jobs/{job_id}/report.html",
        summary="The job's report as a self-contained HTML page for a reviewer (evidence frames embedded, veiled)",
        response_class=HTMLResponse,
        responses={202: {"description": "Still queued or scanning"}, 404: {"description": "No such job"}},
    )
    async def job_report_html(request: Request, job_id: str) -> Response:
        from ..htmlreport import CSP, clip_page
        from ..report import Report

        job = await finished_job(request, job_id)
        if not isinstance(job, Job):
            return job
        report = Report.from_dict(job.report)  # type: ignore[arg-type]
        report.images = dict(job.images)
        page = await asyncio.to_thread(clip_page, report)
        return HTMLResponse(page, headers={**_PAGE_HEADERS, "Content-Security-Policy": CSP})

    @app.get(
        "/v1/jobs/{job_id}/evidence/{frame_index}.jpg",
        summary="One evidence frame of a review or block (JPEG, sexual content pixelated)",
        response_class=Response,
        responses={404: {"description": "No such job or frame"}},
    )
    async def job_evidence(request: Request, job_id: str, frame_index: int) -> Response:
        job = await finished_job(request, job_id)
        if not isinstance(job, Job):
            return job
        jpeg = job.images.get(frame_index)
        if jpeg is None:
            return _json(404, detail(f"job {job_id} has no evidence frame {frame_index}"))
        return Response(jpeg, media_type="image/jpeg", headers=_PAGE_HEADERS)

    @app.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", summary="Readiness: models verified (sha256), workers up")
    async def readyz() -> Response:
        ready, info = svc.readiness()
        return _json(200 if ready else 503, info)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics_endpoint() -> Response:
        return PlainTextResponse(svc.metrics.render(svc.gauges()), media_type="text/plain; version=0.0.4")

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
