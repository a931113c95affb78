"""One typed scan configuration: ``ScanConfig``, what a ``Scanner`` is built from.

The CLI, the worker pools, the archive engines (local and Ray), the service and the bench all
pass a ``ScanConfig``; its values are checked when it is made, and a dictionary with a key it
does not know (a typo) is refused. It is light: no NumPy, Numba or ONNX Runtime at import
(the models, policy and banks it names are read only by ``resolve`` and ``fingerprint``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .pipeline import Scanner
    from .policy import Policy


def _calibration_rules(manifest: Any) -> list[Any]:
    """The manifest's calibration rules that change scores (labels with a ``min_score`` or a
    ``second_signal``), for the fingerprint: ``[]`` when there are none, so a manifest's
    measurements and notes alone leave its archive results valid."""
    rules = sorted(
        [name, cal.min_score, cal.second_signal]
        for name, cal in manifest.calibration.items()
        if cal.min_score > 0 or cal.second_signal is not None
    )
    return [rules] if rules else []


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def banks_digest(banks: str | bool | None) -> dict[str, Any] | None:
    """What of the hash banks in use changes results: bank names, categories, actions, items."""
    if banks is False:
        return None
    from .banks import BankStore, default_db_path

    path = Path(banks) if banks not in (None, True) else default_db_path()  # type: ignore[arg-type]
    if not path.is_file():
        return None
    rows: list[tuple[Any, ...]] = []  # per bank item (or itemless bank), ordered by bank and item name
    try:
        with BankStore(path, create=False) as store:
            for bank in store.list_banks():
                items = [(i.name, i.kind, i.hash_count, i.added_at) for i in store.list_items(bank.name)]
                # a symbol bank's matching overrides change results too (hash banks' rows as before)
                extra = (json.dumps(bank.overrides, sort_keys=True),) if bank.kind == "symbol" else ()
                rows += [(bank.name, bank.category, bank.action, *item, *extra) for item in items or [(None,) * 4]]
    except sqlite3.DatabaseError as ex:
        raise ConfigError(f"hash bank database {path} cannot be read: {ex}") from ex
    if not any(r[3] for r in rows):
        return None  # no item: matching is off, as in the scan
    return {"items": len(rows), "digest": _digest(rows)}


@dataclass(frozen=True)
class Fingerprints:
    """What keys an archive result: digests of the models and of the settings that change results."""

    models: str
    config: str
    models_body: list[list[str]]
    config_body: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"models_fp": self.models, "config_fp": self.config}


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a whole number >= 1 (or None: chosen from the machine), got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ScanConfig:
    """What a ``Scanner`` is built from (the arguments of ``Scanner.__init__``; see there).

    Args:
        fps / every / keyframes / all_frames / adaptive: sampling, one of them (default 2 fps).
        models: model names or manifest paths (None: ``framescan.models.DEFAULT_MODEL``).
        policy: a policy file path, or a policy in its JSON form (``Policy.to_dict()``);
            None: the built-in default policy.
        batch_size / threads / decode_threads: None lets the scanning machine choose.
        early_exit: stop a clip as soon as its decision is ``block``.
        fast_decode: skip H.264/HEVC deblocking where ``framescan.decode.FAST_DECODE`` says
            (faster decoding of upload-like clips; detections agree with the normal decode as
            measured in benchmarks/RESULTS.md).
        limits: resource limits for the input.
        banks: hash-bank database path; None: the default database if it exists; False: off.
        ocr / lexicons: read on-screen text, and extra lexicon files or directories for it
            (and for speech).
        speech / speech_model / speech_languages / transcript: transcribe the spoken words and
            match them against the lexicons (``framescan.speech``); a CTranslate2 Whisper model
            directory instead of the bundled one; the languages Whisper may choose from; write
            the transcript into the report.
        evidence / blur: give reports their evidence frames, sexual content pixelated unless
            ``blur`` is False (``framescan.evidence``; not part of the fingerprints: the scores
            are the same).
        timeline: keep every scored frame's scores in the report (not in the fingerprint: it
            adds to a report and changes nothing in it).
    """

    fps: float | None = None
    every: int | None = None
    keyframes: bool = False
    all_frames: bool = False
    adaptive: bool = False
    models: tuple[str, ...] | None = None
    policy: str | dict[str, Any] | None = None
    batch_size: int | None = None
    threads: int | None = None
    decode_threads: int | None = None
    early_exit: bool = False
    fast_decode: bool = False
    limits: Limits = field(default=DEFAULT_LIMITS)
    banks: str | bool | None = None
    ocr: bool = False
    lexicons: tuple[str, ...] | None = None
    evidence: bool = False
    blur: bool = True
    timeline: bool = False
    speech: bool = False
    speech_model: str | None = None
    speech_languages: tuple[str, ...] | None = None
    transcript: bool = False

    def __post_init__(self) -> None:
        from .sample import make_sampler

        # sequences and paths in their one form, so equal settings compare and pickle equal
        for name in ("models", "lexicons", "speech_languages"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)):
                raise ConfigError(f"{name} must be a list of names or paths, got the single value {value!r}")
            if value is not None:
                object.__setattr__(self, name, tuple(str(v) for v in value))
        if isinstance(self.policy, os.PathLike):
            object.__setattr__(self, "policy", str(self.policy))
        if isinstance(self.banks, os.PathLike):
            object.__setattr__(self, "banks", str(self.banks))
        if isinstance(self.speech_model, os.PathLike):
            object.__setattr__(self, "speech_model", str(self.speech_model))
        if not self.speech and (self.speech_model or self.speech_languages or self.transcript):
            raise ConfigError("speech_model, speech_languages and transcript are used only with speech=True")
        for lang in self.speech_languages or ():
            if not (lang.isalpha() and lang.islower() and 2 <= len(lang) <= 3):
                raise ConfigError(f"speech language {lang!r} is not a language code such as 'id' or 'en'")
        if self.speech_languages == ():
            raise ConfigError("speech_languages is empty: give at least one language code (e.g. id,en)")
        if not isinstance(self.limits, Limits):
            raise ConfigError(f"limits must be a Limits, got {type(self.limits).__name__}")
        make_sampler(**self.sampling())  # one sampling mode, valid values: the sampler's own messages
        for name in ("batch_size", "threads", "decode_threads"):
            _positive(name, getattr(self, name))

    def sampling(self) -> dict[str, Any]:
        """The sampling fields, as ``framescan.sample.make_sampler`` takes them."""
        return {
            "fps": self.fps,
            "every": self.every,
            "keyframes": self.keyframes,
            "all_frames": self.all_frames,
            "adaptive": self.adaptive,
        }

    # -- plain data (JSON for files and the bench, pickled for worker processes and Ray)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "scan configuration") -> ScanConfig:
        """The inverse of ``to_dict``; an unknown key raises ``ConfigError`` naming it and the known ones."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected an object of settings, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown} (known: {', '.join(known)})")
        kw = dict(data)
        if isinstance(kw.get("limits"), dict):
            kw["limits"] = DEFAULT_LIMITS.updated(**kw["limits"])
        try:
            return cls(**kw)
        except ConfigError as ex:
            raise ConfigError(f"{where}: {ex.message}") from ex

    def to_dict(self) -> dict[str, Any]:
        """The settings that differ from the defaults, JSON-safe (``from_dict`` reads it back)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if isinstance(value, Limits):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    # -- what the settings stand for

    def load_policy(self) -> Policy:
        """The ``Policy`` object the settings name (the file is read now)."""
        from .policy import DEFAULT_POLICY, load_policy, parse_policy

        if isinstance(self.policy, dict):
            return parse_policy(self.policy)
        return load_policy(self.policy) if self.policy else DEFAULT_POLICY

    def resolve(self) -> ScanConfig:
        """The same settings with the defaults filled in: the model names, the policy in its
        canonical JSON form (read from its file now, so remote workers need no copy), the bank
        database path (False when the default one does not exist). ``threads``, ``batch_size``
        and ``decode_threads`` stay as given: the scanning machine chooses them. Idempotent."""
        from .banks import default_db_path
        from .models import DEFAULT_MODEL

        banks = self.banks
        if banks in (None, True):
            default = default_db_path()
            banks = str(default) if default.is_file() else False
        return replace(self, models=self.models or (DEFAULT_MODEL,), policy=self.load_policy().to_dict(), banks=banks)

    def fingerprint(self) -> Fingerprints:
        """The archive's fingerprints of these settings, from the manifests, policy, lexicons and
        bank database, without loading any model. Speed settings (threads, batch size) do not count."""
        from .models import load_manifest
        from .sample import make_sampler

        r = self.resolve()
        manifests = [load_manifest(m) for m in r.models or ()]
        models_body = sorted([m.name, m.sha256.lower()] for m in manifests)
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
            "policy": r.policy,
            "sampling": make_sampler(**r.sampling()).describe(),
            "limits": r.limits.to_dict(),
            "early_exit": r.early_exit,
            "model_settings": _digest(settings),
            "banks": banks_digest(r.banks),
        }
        # the manifests' score-changing calibration rules, under their own key (present only when
        # some model has one): eval --rescore reapplies them from the stored timelines, so it
        # compares the settings without this key and the policy
        rules = {m.name: rule for m in manifests for rule in _calibration_rules(m)}
        if rules:
            config_body["calibration"] = rules
        if r.fast_decode:  # pictures decoded without deblocking: scores may differ a little
            config_body["fast_decode"] = True
        if r.ocr:  # the on-screen text lexicons in force change what is found
            from .lexicon import Lexicon

            lex = Lexicon.load(r.lexicons)
            config_body["ocr_lexicon"] = _digest(sorted([t.category, t.term, t.weight] for t in lex.terms))
        if r.speech:  # what is heard depends on the model and languages; what is found on the lexicons
            from .lexicon import Lexicon
            from .speech import DEFAULT_LANGUAGES, MODEL_SHA256

            lex = Lexicon.load(r.lexicons)
            config_body["speech"] = {
                "model": MODEL_SHA256 if r.speech_model is None else str(Path(r.speech_model).resolve()),
                "languages": list(r.speech_languages or DEFAULT_LANGUAGES),
                "lexicon": _digest(sorted([t.category, t.term, t.weight] for t in lex.terms)),
            }
        return Fingerprints(_digest(models_body), _digest(config_body), models_body, config_body)

    # -- the scanner

    def scanner_kwargs(self) -> dict[str, Any]:
        """``Scanner.__init__``'s arguments for these settings (only those that differ from its
        defaults, so a ``Scanner`` of another version of framescan takes them too: the bench)."""
        kw: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}
        if isinstance(self.policy, dict):
            kw["policy"] = self.load_policy()
        for name in ("models", "lexicons", "speech_languages"):
            if name in kw:
                kw[name] = list(kw[name])
        return kw

    def scanner(self) -> Scanner:
        """Build the ``Scanner`` (loads the models: imports NumPy, Numba and ONNX Runtime)."""
        from .pipeline import Scanner

        return Scanner(**self.scanner_kwargs())
