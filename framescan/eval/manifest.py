"""A labelled set: a JSONL or CSV manifest, or a folder layout (``positive/<category>/...``,
``negative/...``) -> ``LabelledSet`` (one ``Item`` per clip). No NumPy here."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..categories import CATEGORIES
from ..errors import ConfigError

#: Manifest columns/keys besides the per-category ones.
BASE_KEYS = ("path", "split")
#: Video files a folder layout picks up.
FOLDER_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".ts", ".gif", ".y4m")


@dataclass(frozen=True)
class Item:
    """One clip of a set: its labels (category -> True/False; absent: unlabelled) and the labelled
    segments of its positive categories (category -> [(start, end)], seconds)."""

    path: str
    labels: dict[str, bool]
    segments: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    split: str | None = None


@dataclass(frozen=True)
class LabelledSet:
    source: str
    items: list[Item]

    def categories(self) -> list[str]:
        """The categories some clip is labelled for, in the order of ``CATEGORIES``."""
        used = {c for it in self.items for c in it.labels}
        return [c for c in CATEGORIES if c in used]

    def only_split(self, split: str | None) -> LabelledSet:
        if split is None:
            return self
        items = [it for it in self.items if it.split == split]
        if not items:
            raise ConfigError(f"{self.source}: no clip has split {split!r}")
        return LabelledSet(self.source, items)


def _label(value: Any, where: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "t"):
        return True
    if text in ("false", "0", "no", "n", "f"):
        return False
    raise ConfigError(f"{where}: a label must be true, false or empty (unlabelled), got {value!r}")


def _segments(value: Any, where: str) -> list[tuple[float, float]]:
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError as ex:
            raise ConfigError(f"{where}: segments must be JSON like [[1.0, 2.5]], got {value!r}") from ex
    ok = isinstance(value, list) and all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in s)
        for s in value
    )
    if not ok:
        raise ConfigError(f"{where}: segments must be a list of [start, end] pairs in seconds, got {value!r}")
    out = [(float(a), float(b)) for a, b in value]
    for a, b in out:
        if not 0 <= a <= b:
            raise ConfigError(f"{where}: a segment needs 0 <= start <= end, got [{a:g}, {b:g}]")
    return out


def _item(row: dict[str, Any], base: Path, where: str) -> Item:
    """One manifest row: ``path``, ``<category>`` labels, ``<category>_segments``, ``split``."""
    known = set(BASE_KEYS) | set(CATEGORIES) | {f"{c}_segments" for c in CATEGORIES}
    unknown = sorted(k for k in row if k not in known and k is not None)
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {unknown} (known: path, split, a category ({', '.join(CATEGORIES)}) "
            "and <category>_segments)"
        )
    path = row.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ConfigError(f"{where}: every row needs a 'path'")
    full = path if os.path.isabs(path) else str(base / path)
    labels: dict[str, bool] = {}
    segments: dict[str, list[tuple[float, float]]] = {}
    for cat in CATEGORIES:
        lab = _label(row.get(cat), f"{where}: {cat}")
        if lab is not None:
            labels[cat] = lab
        segs = _segments(row.get(f"{cat}_segments", []), f"{where}: {cat}_segments")
        if segs:
            if lab is not True:
                raise ConfigError(f"{where}: {cat}_segments given but {cat} is not labelled true")
            segments[cat] = segs
    split = row.get("split")
    return Item(full, labels, segments, None if split in (None, "") else str(split))


def _read_jsonl(path: Path) -> list[Item]:
    items = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as ex:
                raise ConfigError(f"{where}: not a JSON object ({ex.msg})") from ex
            if not isinstance(row, dict):
                raise ConfigError(f"{where}: expected a JSON object per line")
            items.append(_item(row, path.parent, where))
    return items


def _read_csv(path: Path) -> list[Item]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ConfigError(f"{path}: a CSV manifest needs a header row with a 'path' column")
        return [_item(row, path.parent, f"{path}:{n}") for n, row in enumerate(reader, 2)]


def _read_folder(root: Path) -> list[Item]:
    """``positive/<category>/**`` (labelled true for that category, false for the others) and
    ``negative/**`` (false for every category)."""
    pos, neg = root / "positive", root / "negative"
    if not pos.is_dir() and not neg.is_dir():
        raise ConfigError(f"{root}: a set folder needs positive/<category>/ and/or negative/ (see docs/eval.md)")
    cats = sorted(p.name for p in pos.iterdir() if p.is_dir()) if pos.is_dir() else []
    for c in cats:
        if c not in CATEGORIES:
            raise ConfigError(f"{pos / c}: unknown category {c!r} (known: {', '.join(CATEGORIES)})")
    used = [c for c in CATEGORIES if c in cats] or list(CATEGORIES)  # negatives only: clean for every category

    def videos(d: Path) -> list[str]:
        return sorted(str(p) for p in d.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_EXTENSIONS)

    items = [Item(p, {c: c == cat for c in used}) for cat in used if (pos / cat).is_dir() for p in videos(pos / cat)]
    items += [Item(p, dict.fromkeys(used, False)) for p in (videos(neg) if neg.is_dir() else [])]
    return items


def load_set(source: str | os.PathLike[str]) -> LabelledSet:
    """Read a labelled set (manifest file or folder layout); ``ConfigError`` with a one-line
    reason when it cannot be read or holds no clip."""
    path = Path(source)
    if path.is_dir():
        manifest = next((path / n for n in ("manifest.jsonl", "manifest.csv") if (path / n).is_file()), None)
        items = _read_folder(path) if manifest is None else load_set(manifest).items
    elif path.is_file():
        suffix = path.suffix.lower()
        try:
            if suffix in (".jsonl", ".ndjson", ".json"):
                items = _read_jsonl(path)
            elif suffix == ".csv":
                items = _read_csv(path)
            else:
                raise ConfigError(f"{path}: a set is a .jsonl or .csv manifest or a folder (see docs/eval.md)")
        except UnicodeDecodeError as ex:
            raise ConfigError(f"{path}: not a UTF-8 text manifest") from ex
        except OSError as ex:
            raise ConfigError(f"{path}: cannot be read: {ex.strerror or ex}") from ex
    else:
        raise ConfigError(f"{path}: no such manifest or folder")
    if not items:
        raise ConfigError(f"{path}: the set holds no clip")
    if not any(it.labels for it in items):
        raise ConfigError(f"{path}: no clip is labelled for any category")
    return LabelledSet(str(path), items)
