"""What runs the scans of an archive run: ``LocalEngine`` (a pool of isolated workers) and
``RayEngine`` (``ScanActor`` actors on a Ray cluster; ray is imported only when used)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import replace
from typing import Any

from ..config import Fingerprints, ScanConfig
from ..errors import ConfigError, FramescanError, ModelError


class Engine:
    """Runs scans for the slot threads: ``scan(slot, path)`` returns a report dict, never raises
    for a bad clip; raises ``FramescanError`` when the engine itself is broken."""

    name = "engine"
    slots = 1

    def start(self) -> None:
        raise NotImplementedError

    def scan(self, slot: int, path: str) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class LocalEngine(Engine):
    """One ``WorkerPool`` of N isolated workers, created by the thread that calls ``start``."""

    name = "local"

    def __init__(self, workers: int, config: ScanConfig) -> None:
        from ..isolate import split_threads

        self.slots = workers
        split = split_threads(workers)
        self.config = replace(
            config,
            threads=config.threads or split["threads"],
            decode_threads=config.decode_threads or split["decode_threads"],
        )
        self.pool: Any = None
        self._cv = threading.Condition()
        self._inflight = 0

    def start(self) -> None:
        from ..isolate import WorkerConfig, WorkerPool

        self.pool = WorkerPool(self.slots, WorkerConfig(scan=self.config))

    def scan(self, slot: int, path: str) -> dict[str, Any]:
        with self._cv:
            pool = self.pool
            if pool is None:  # closing: the run is stopping and discards this
                return _aborted(path)
            self._inflight += 1
        try:
            return pool.scan(path).to_wire()
        except FramescanError as ex:  # a replacement worker could not start: the engine is broken
            raise ModelError(f"the worker pool failed: {ex.message}") from ex
        finally:
            with self._cv:
                self._inflight -= 1
                self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            pool, self.pool = self.pool, None
            busy = self._inflight
        if pool is None:
            return
        if busy:
            # Stopping mid-run (interrupt, full store). WorkerPool.close() must not race a scan
            # running in another thread (both would close that worker's connection), so: no
            # replacement workers from now on, kill the workers so in-flight scans return at
            # once (the caller discards them), then close the pool.
            pool._closed = True
            for pid in pool.pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            with self._cv:
                self._cv.wait_for(lambda: self._inflight == 0, timeout=30.0)
        pool.close()


def _aborted(name: str) -> dict[str, Any]:
    from ..errors import DecoderCrashed
    from ..report import Report

    return Report.from_error(name, DecoderCrashed(f"{name}: the scan was cut short (the run is stopping)")).to_dict()


class ScanActor:
    """Ray actor body: builds one ``Scanner`` (models loaded once) and scans clip after clip."""

    def __init__(self, config: ScanConfig) -> None:
        self.scanner = config.scanner()

    def describe(self) -> dict[str, Any]:
        s = self.scanner
        return {**s.describe(), "banks": s.known is not None or s.symbols is not None}

    def scan(self, source: str | bytes, name: str) -> dict[str, Any]:
        from ..report import Report

        try:
            return self.scanner.scan(source, name=name).to_wire()
        except FramescanError as ex:
            return Report.from_error(name, ex).to_dict()
        except MemoryError as ex:
            from ..errors import ResourceExhausted

            return Report.from_error(name, ResourceExhausted(f"{name}: out of memory ({ex})")).to_dict()


class RayEngine(Engine):
    """The same scans as Ray actors (one per slot, each with its own ``Scanner``).

    A slot's call waits ``max_seconds_per_clip``; on a timeout the actor is killed and
    replaced (``TIMEOUT``), a dead actor (segfault, OOM) is replaced too
    (``DECODER_CRASHED``): both count a try, as with local workers. The driver writes every
    result to the store. ``ship_bytes`` sends file contents through the object store for
    clusters whose nodes do not share the archive's file system."""

    name = "ray"

    def __init__(
        self,
        address: str | None,
        workers: int | None,
        config: ScanConfig,
        ship_bytes: bool = False,
    ) -> None:
        self.address = address
        self.requested = workers
        # the driver's policy file, sent as data: nodes need no copy
        self.config = replace(config, policy=config.load_policy().to_dict()) if config.policy else config
        self.ship_bytes = ship_bytes
        self.threads = config.threads
        self.actors: list[Any] = []
        self.slots = workers or 0
        self._ray: Any = None
        self._cls: Any = None
        self._owns_ray = False
        self._closing = False
        self.described: dict[str, Any] | None = None

    def connect(self) -> None:
        """Import ray and connect (before the slot count is needed)."""
        try:
            import ray
        except ImportError as ex:
            raise ConfigError(
                "--ray needs the ray package, which is not installed: pip install 'ray[default]' "
                "(or pip install 'framescan[ray]')"
            ) from ex
        self._ray = ray
        if not ray.is_initialized():
            kw: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if self.address:
                kw["address"] = self.address
            ray.init(**kw)
            self._owns_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.threads = self.threads or 1
        self.slots = self.requested or max(1, cpus // self.threads)
        self.config = replace(self.config, threads=self.threads, decode_threads=self.config.decode_threads or 1)

    def _new_actor(self) -> Any:
        return self._cls.options(num_cpus=self.threads, max_restarts=0).remote(self.config)

    def start(self) -> None:
        if self._ray is None:
            self.connect()
        ray = self._ray
        self._cls = ray.remote(ScanActor)
        self.actors = [self._new_actor() for _ in range(self.slots)]
        try:
            described = ray.get([a.describe.remote() for a in self.actors], timeout=600)
        except Exception as ex:
            raise ModelError(f"ray actors failed to start (scanner or models): {_ray_message(ex)}") from ex
        self.described = described[0]

    def verify(self, fp: Fingerprints) -> None:
        """The actors must scan with what the fingerprints say (models, policy, sampling, banks)."""
        d = self.described or {}
        models = sorted([m["name"], m["sha256"].lower()] for m in d.get("models", []))
        if models != fp.models_body:
            raise ConfigError(f"the ray actors loaded models {models}, the driver expects {fp.models_body}")
        if d.get("policy") != fp.config_body["policy"] or d.get("sampling") != fp.config_body["sampling"]:
            raise ConfigError("the ray actors use another policy or sampling than the driver")
        if bool(d.get("banks")) != (fp.config_body["banks"] is not None):
            raise ConfigError(
                "hash banks differ between the driver and the ray actors: give --banks DB at a path every node "
                "can read, or --no-banks"
            )

    def scan(self, slot: int, path: str) -> dict[str, Any]:
        from ..errors import DecoderCrashed, ScanTimeout
        from ..report import Report

        ray = self._ray
        name = path
        payload: str | bytes = path
        if self.ship_bytes:
            try:
                with open(path, "rb") as f:
                    payload = f.read()
            except OSError as ex:
                from ..errors import FileNotFound

                return Report.from_error(name, FileNotFound(f"{path}: {ex.strerror or ex}")).to_dict()
        limit = self.config.limits.max_seconds_per_clip
        ref = self.actors[slot].scan.remote(payload, name)
        try:
            return dict(ray.get(ref, timeout=limit))
        except ray.exceptions.GetTimeoutError:
            self._replace(slot)
            err: FramescanError = ScanTimeout(
                f"{name}: no result within {limit:.1f} s (limit max_seconds_per_clip); the actor was killed",
                limit="max_seconds_per_clip",
            )
        except ray.exceptions.RayActorError as ex:
            self._replace(slot)
            err = DecoderCrashed(f"{name}: the ray actor died while scanning ({_ray_message(ex)})")
        except ray.exceptions.RayTaskError as ex:
            err = DecoderCrashed(f"{name}: scanning failed unexpectedly in the actor: {_ray_message(ex)}")
        except ray.exceptions.RayError as ex:  # lost object, node failure...: the actor may be gone
            self._replace(slot)
            err = DecoderCrashed(f"{name}: the ray cluster lost this scan ({_ray_message(ex)})")
        return Report.from_error(name, err).to_dict()

    def _replace(self, slot: int) -> None:
        with contextlib.suppress(Exception):
            self._ray.kill(self.actors[slot], no_restart=True)
        if self._closing:
            return
        actor = self._new_actor()
        self.actors[slot] = actor
        try:  # load the models before the next clip's clock starts
            self._ray.get(actor.describe.remote(), timeout=600)
        except self._ray.exceptions.RayError as ex:
            raise ModelError(f"a replacement ray actor failed to start: {_ray_message(ex)}") from ex

    def close(self) -> None:
        self._closing = True
        for a in self.actors:
            with contextlib.suppress(Exception):
                self._ray.kill(a, no_restart=True)
        self.actors = []
        if self._owns_ray and self._ray is not None:
            with contextlib.suppress(Exception):
                self._ray.shutdown()


def _ray_message(ex: BaseException) -> str:
    text = str(ex).strip().splitlines()
    return text[-1][:300] if text else type(ex).__name__
