"""Archive scanning: millions of files, resumable after any crash (``framescan archive``).

An archive run walks a folder (or reads a list of paths), hashes every candidate file
(sha256 of its content) and scans each *content* once per (models, configuration) pair in
N isolated workers (``framescan.isolate.WorkerPool``), or in Ray actors. Results go to a
SQLite store (WAL, ``synchronous=FULL``), each committed in its own transaction the moment
it arrives, so a kill at any instant loses at most the clips that were in flight; a rerun of
the same command continues where the last one stopped.

Keys. A result is keyed by ``(sha256 of the content, models fingerprint, config
fingerprint)``:

- models fingerprint: sha256 of the sorted ``(name, sha256)`` pairs of the scanner's model
  manifests;
- config fingerprint: sha256 of the JSON of the policy (``Policy.to_dict()``), the sampling
  (``Sampler.describe()``), the limits, ``early_exit``, the label/decoder settings of the
  manifests and a digest of the hash banks in use.

A copy or a renamed file has the same content hash: it is not scanned again. Another model
or policy gives other fingerprints: everything is scanned again (older results stay in the
store, under their own fingerprints).

States. Every item (content hash under one fingerprint pair) is in exactly one state:
``pending`` (known, not finished), ``done`` (scanned: decision ``allow``/``review``/
``block``), ``failed`` (the clip cannot be scanned: the report's error code, e.g.
``UNSUPPORTED_FORMAT``, ``TRUNCATED``), ``quarantined`` (a worker crashed or timed out on it
``max_tries`` times). A worker crash or timeout counts one try and the item is retried
(later in the same run, or in the next one). Paths that cannot even be read are recorded per
path (``NOT_FOUND``, ``UNREADABLE``), since they have no content hash, and so are files the
run skips, with their reason (``SKIP_REASONS``). The run's summary counts every file once, in
the state it ended in (``_Stats.settle``).

Storage errors (``database or disk is full``, I/O errors) stop the run with ``StoreError``:
nothing that was committed is lost, and the next run resumes.

The package, by concern: ``discover`` (what to scan), ``fingerprint`` (result keys), ``store``
(the SQLite result store), ``engines`` (local workers, Ray), ``run`` (a run and its summary),
``export`` (rows out of a store); the live bar or JSON lines are ``framescan.progress.Progress``."""

from ..progress import Progress
from .discover import DEFAULT_EXTENSIONS, Job, Skipped, parse_extensions, sniff_video, walk_folder
from .engines import RayEngine
from .export import EXPORT_FORMATS, export, iter_export
from .run import DEFAULT_MAX_TRIES, DEFAULT_PROGRESS_INTERVAL, ArchiveOptions, render_summary, run_archive
from .store import Outcome, Store, StoreError

__all__ = [
    "DEFAULT_EXTENSIONS",
    "DEFAULT_MAX_TRIES",
    "DEFAULT_PROGRESS_INTERVAL",
    "EXPORT_FORMATS",
    "ArchiveOptions",
    "Job",
    "Outcome",
    "Progress",
    "RayEngine",
    "Skipped",
    "Store",
    "StoreError",
    "export",
    "iter_export",
    "parse_extensions",
    "render_summary",
    "run_archive",
    "sniff_video",
    "walk_folder",
]
