"""What keys an archive result: the sha256 of a file's content, the fingerprints of the scanner
(models; policy, sampling, limits, banks...), and the check that a report matches them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..limits import Limits
from ..probe import SNIFF_BYTES
from .discover import sniff_video

HASH_CHUNK = 1 << 20


def hash_file(path: str, sniff: bool) -> str | None:
    """sha256 of the file's content, or None when ``sniff`` and the first bytes are not video."""
    with open(path, "rb") as f:
        head = f.read(HASH_CHUNK)
        if sniff and not sniff_video(head[:SNIFF_BYTES]):
            return None
        h = hashlib.sha256(head)
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def banks_digest(banks: Any) -> dict[str, Any] | None:
    """What of the hash banks in use changes results: bank names, categories, actions, items."""
    if banks is False:
        return None
    from ..banks import BankStore, default_db_path

    path = Path(banks) if banks not in (None, True) else default_db_path()
    if not path.is_file():
        return None
    rows: list[tuple[Any, ...]] = []  # per bank item (or itemless bank), ordered by bank and item name
    try:
        with BankStore(path, create=False) as store:
            for bank in store.list_banks():
                items = [(i.name, i.kind, i.hash_count, i.added_at) for i in store.list_items(bank.name)]
                rows += [(bank.name, bank.category, bank.action, *item) for item in items or [(None,) * 4]]
    except sqlite3.DatabaseError as ex:
        raise ConfigError(f"hash bank database {path} cannot be read: {ex}") from ex
    if not any(r[3] for r in rows):
        return None  # no item: matching is off, as in the scan
    return {"items": len(rows), "digest": _digest(rows)}


@dataclass(frozen=True)
class Fingerprints:
    models: str
    config: str
    models_body: list[list[str]]
    config_body: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"models_fp": self.models, "config_fp": self.config}


def compute_fingerprints(scanner: dict[str, Any], limits: Limits) -> Fingerprints:
    """The fingerprints of a scanner configuration (``Scanner(**scanner, limits=limits)``),
    computed from the manifests and policy without loading any model."""
    from ..models import DEFAULT_MODEL, ModelManifest, load_manifest
    from ..policy import DEFAULT_POLICY, Policy, load_policy
    from ..sample import make_sampler

    manifests = [
        m if isinstance(m, ModelManifest) else load_manifest(m) for m in (scanner.get("models") or [DEFAULT_MODEL])
    ]
    models_body = sorted([m.name, m.sha256.lower()] for m in manifests)
    pol = scanner.get("policy")
    policy = pol if isinstance(pol, Policy) else (load_policy(pol) if pol else DEFAULT_POLICY)
    sampler = make_sampler(
        fps=scanner.get("fps"),
        every=scanner.get("every"),
        keyframes=bool(scanner.get("keyframes")),
        all_frames=bool(scanner.get("all_frames")),
        adaptive=bool(scanner.get("adaptive")),
    )
    settings = sorted(
        [
            repr(m.input),
            m.output.decoder,
            json.dumps(m.output.params, sort_keys=True, default=str),
            [[lab.name, lab.category, lab.weight] for lab in m.labels],
            m.schedule_every,
        ]
        for m in manifests
    )
    config_body = {
        "policy": policy.to_dict(),
        "sampling": sampler.describe(),
        "limits": limits.to_dict(),
        "early_exit": bool(scanner.get("early_exit")),
        "model_settings": _digest(settings),
        "banks": banks_digest(scanner.get("banks")),
    }
    if scanner.get("ocr"):  # the on-screen text lexicons in force change what is found
        from ..lexicon import Lexicon

        lex = Lexicon.load(scanner.get("lexicons"))
        config_body["ocr_lexicon"] = _digest(sorted([t.category, t.term, t.weight] for t in lex.terms))
    return Fingerprints(_digest(models_body), _digest(config_body), models_body, config_body)


def check_report(report: dict[str, Any], fp: Fingerprints) -> None:
    """A scanned report must come from the models, policy and sampling the fingerprints name."""
    if report.get("status") == "error":
        return
    got = sorted([m["name"], m["sha256"].lower()] for m in report.get("models", []))
    if got != fp.models_body:
        raise ConfigError(f"a worker scanned with models {got}, expected {fp.models_body}: the models changed mid-run")
    if report.get("policy") != fp.config_body["policy"] or report.get("sampling") != fp.config_body["sampling"]:
        raise ConfigError("a worker scanned with another policy or sampling than the run's: configuration changed")
