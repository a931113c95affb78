"""The upload-pipeline service: a bounded, authenticated HTTP scanner (FastAPI + uvicorn).

``POST /v1/scan`` takes a clip as the raw request body (any Content-Type but multipart) or as
the ``file`` field of a ``multipart/form-data`` body, and answers ``200`` with the clip report
(``Report.to_dict()``, the CLI's JSON schema) when the scan ends within the request's
``deadline``, else ``202`` with a job id to poll at ``GET /v1/jobs/{id}``. See docs/service.md.

Everything untrusted is bounded before it costs anything:

- the bearer token is checked before the body is read (no token or a wrong one: ``401``);
- a slot (a worker or a queue place) is reserved before the body is read: none free is an
  immediate ``429`` with ``Retry-After``;
- the body is counted as it streams in: ``413`` as soon as it passes the size limit (or at
  once from ``Content-Length``), ``408`` when it arrives slower than the minimum rate or not
  within the receive deadline; the first bytes of the clip must look like a container framescan
  reads (``415`` otherwise; the file name and Content-Type are ignored);
- the clip goes to a private temporary file (``0600`` in a ``0700`` directory), is scanned by
  a warm isolated worker (``framescan.isolate.WorkerPool``) in a thread, and is deleted after.

``create_app(ServiceConfig(...))`` builds the ASGI app; ``framescan serve`` runs it with uvicorn.

One module per concern, each importing only those above it in this list: ``config`` (settings,
tokens, policies), ``metrics``, ``core`` (worker pools, admission, jobs; no HTTP), ``upload``
(receiving the body) and ``app`` (the FastAPI routes).
"""

from .app import create_app
from .config import DEFAULT_MAX_UPLOAD, ServiceConfig, load_tokens, parse_tokens
from .core import DEFAULT_PROFILE, ScanService

__all__ = [
    "DEFAULT_MAX_UPLOAD",
    "DEFAULT_PROFILE",
    "ScanService",
    "ServiceConfig",
    "create_app",
    "load_tokens",
    "parse_tokens",
]
