"""Weighted word lists (hate, bullying, extremism) matched against normalised text (OCR output).

List files are UTF-8 text, named ``<category>[.<anything>].txt`` (``hate.id.txt``, ``bullying.en.txt``,
``extremism.mylist.txt``); the category comes from the first part of the name and must be one of
``CATEGORIES``. One term a line, the weight first (0-1, what the category sees), then the term (a word
or a phrase); ``#`` starts a comment. A term may start or end with ``*`` to match any word that ends or
starts with it (``goblok*`` matches ``gobloknya``). See docs/ocr.md.

Text and terms go through the same ``normalise``: NFKD with diacritics dropped, lowercase, a few
look-alike letters and leetspeak digits mapped to letters, letters spelled out one at a time joined
(``g o b l o k``, ``b.o.d.o.h``), everything else a single space, runs of a letter collapsed to one.
A term matches whole words only (``ass`` does not match ``class``); the spaces of a phrase may be
missing in the text (OCR often drops them); a doubled letter in a term must be at least doubled in the
text (``ass`` does not match ``as``; write ``as`` to accept both).
"""

from __future__ import annotations

import importlib.resources
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .models import CATEGORIES

#: Environment variable: extra list files or directories, separated by ``os.pathsep``.
ENV_VAR = "FRAMESCAN_LEXICONS"

_LEET = {"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t", "@": "a", "$": "s"}
# Cyrillic and Greek letters that look like Latin ones (a common filter-evasion trick).
_HOMOGLYPHS = {
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ο": "o", "α": "a", "ι": "i", "κ": "k", "ν": "v",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
}  # fmt: skip
_DROP = frozenset("'’‘`´")  # apostrophes vanish: "don't" -> "dont"
_JOINERS = frozenset(".-_ ")  # separators between letters spelled out one at a time
_MIN_SPELLED = 3  # "g o b l o k" is joined only from this many single letters


@dataclass(frozen=True)
class TermMatch:
    """A term found in a text: ``start``/``end`` index the original text (``text[start:end]``)."""

    term: str
    category: str
    weight: float
    start: int
    end: int
    list_name: str


@dataclass(frozen=True)
class _Norm:
    text: str  # normalised: [alnum]+ words separated by single spaces
    runs: tuple[int, ...]  # how many times each character stood in a row before collapsing (capped at 2)
    starts: tuple[int, ...]  # original index where each character came from
    ends: tuple[int, ...]  # original end index (exclusive)


def _chars(text: str) -> list[tuple[str, int, str]]:
    """Per output character: (char, original index, kind) with kind "a" (alnum), "j" (joiner) or "s" (space)."""
    out: list[tuple[str, int, str]] = []
    for i, c in enumerate(text):
        for d in unicodedata.normalize("NFKD", c):
            if unicodedata.combining(d):
                continue
            for ch in d.lower():
                if unicodedata.combining(ch) or ch in _DROP:
                    continue
                ch = _HOMOGLYPHS.get(ch, ch)
                ch = _LEET.get(ch, ch)
                if ch.isalnum():
                    out.append((ch, i, "a"))
                else:
                    out.append((" ", i, "j" if ch in _JOINERS else "s"))
    return out


def _join_spelled(chars: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    """Drop the single joiners between >= _MIN_SPELLED single letters: "g o b l o k" -> "goblok"."""
    n = len(chars)

    def single(k: int) -> bool:
        return chars[k][2] == "a" and (k == 0 or chars[k - 1][2] != "a") and (k + 1 == n or chars[k + 1][2] != "a")

    drop: set[int] = set()
    i = 0
    while i < n:
        if not single(i):
            i += 1
            continue
        seq = [i]
        while seq[-1] + 2 < n and chars[seq[-1] + 1][2] == "j" and single(seq[-1] + 2):
            seq.append(seq[-1] + 2)
        if len(seq) >= _MIN_SPELLED:
            drop.update(k + 1 for k in seq[:-1])
        i = seq[-1] + 1
    return [c for k, c in enumerate(chars) if k not in drop]


def _normalise(text: str) -> _Norm:
    chars = _join_spelled(_chars(text))
    out: list[str] = []
    runs: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    for ch, i, _ in chars:
        if out and out[-1] == ch:  # collapse runs (letters and spaces alike)
            runs[-1] = min(2, runs[-1] + 1)
            ends[-1] = i + 1
            continue
        if ch == " " and not out:
            continue  # no leading space
        out.append(ch)
        runs.append(1)
        starts.append(i)
        ends.append(i + 1)
    if out and out[-1] == " ":
        for lst in (out, runs, starts, ends):
            lst.pop()
    return _Norm("".join(out), tuple(runs), tuple(starts), tuple(ends))


def normalise(text: str) -> str:
    """The form terms and texts are compared in (see the module docstring)."""
    return _normalise(text).text


@dataclass(frozen=True)
class Term:
    """One list entry, compiled."""

    term: str  # as written in the list (without the weight)
    category: str
    weight: float
    list_name: str
    core: str  # normalised term without the wildcards
    runs: tuple[int, ...]  # letter runs of ``core`` with spaces removed
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, term: str, category: str, weight: float, list_name: str) -> Term:
        raw = term.strip()
        prefix, suffix = raw.startswith("*"), raw.endswith("*") and len(raw) > 1
        body = raw[1 if prefix else 0 : len(raw) - 1 if suffix else len(raw)]
        if "*" in body:
            raise ValueError("'*' may only start or end a term")
        norm = _normalise(body)
        if len(norm.text.replace(" ", "")) < 2:
            raise ValueError(f"term {raw!r} has fewer than 2 letters or digits after normalisation")
        core = re.escape(norm.text).replace(r"\ ", " ").replace(" ", " ?")  # OCR may drop a phrase's spaces
        word = r"[^\s]*"
        pattern = re.compile(
            r"(?<!\S)" + (word if prefix else "") + f"(?P<core>{core})" + (word if suffix else "") + r"(?!\S)"
        )
        runs = tuple(r for ch, r in zip(norm.text, norm.runs) if ch != " ")
        return cls(raw, category, weight, list_name, norm.text, runs, pattern)

    def find(self, norm: _Norm) -> Iterable[tuple[int, int]]:
        """(start, end) spans in ``norm.text`` where the term matches."""
        for m in self.pattern.finditer(norm.text):
            # every doubled letter of the term must be (at least) doubled in the text
            idx = [k for k in range(*m.span("core")) if norm.text[k] != " "]
            if all(norm.runs[k] >= r for k, r in zip(idx, self.runs)):
                yield m.start(), m.end()


def _category_of(path: Path) -> str:
    category = path.name.split(".", 1)[0]
    if category not in CATEGORIES:
        raise ConfigError(
            f"{path}: a lexicon file name must start with a category ({', '.join(CATEGORIES)}), e.g. 'hate.id.txt'",
            path=str(path),
        )
    return category


def parse_list(text: str, category: str, list_name: str, where: str = "<list>") -> list[Term]:
    """Parse one list's text (``<weight> <term>`` lines); ``where`` names it in errors."""
    terms: list[Term] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        try:
            if len(parts) < 2:
                raise ValueError(f"expected '<weight> <term>', got {line!r}")
            try:
                weight = float(parts[0])
            except ValueError:
                raise ValueError(f"expected '<weight> <term>' with a number first, got {line!r}") from None
            if not 0.0 <= weight <= 1.0:
                raise ValueError(f"weight {weight} is not between 0 and 1")
            terms.append(Term.parse(parts[1], category, weight, list_name))
        except ValueError as ex:
            raise ConfigError(f"{where}:{lineno}: {ex}", path=where, line=lineno) from None
    return terms


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files of ``paths``: a directory stands for its ``*.txt`` files (sorted, not recursive)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.glob("*.txt") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"lexicon path {p} does not exist", path=str(p))
    return files


def bundled_lists() -> list[Path]:
    """The lists shipped with framescan (``framescan/data/lexicons``)."""
    root = importlib.resources.files("framescan") / "data" / "lexicons"
    return sorted(Path(str(f)) for f in root.iterdir() if f.name.endswith(".txt"))


class Lexicon:
    """Terms of several lists. Later lists override earlier ones term by term (same category and
    normalised term: the later weight wins, and weight 0 switches a term off)."""

    def __init__(self, terms: Iterable[Term]) -> None:
        by_key: dict[tuple[str, str], Term] = {}
        for t in terms:
            key = (t.category, t.pattern.pattern)
            by_key.pop(key, None)  # re-insert so the override keeps the later list's order
            by_key[key] = t
        self.terms: list[Term] = [t for t in by_key.values() if t.weight > 0]

    @classmethod
    def load(
        cls,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        bundled: bool = True,
        env: bool = True,
    ) -> Lexicon:
        """Load the bundled lists (``bundled``), then those in ``$FRAMESCAN_LEXICONS`` (``env``), then
        ``paths`` (files, or directories of ``*.txt`` files). Raises ``ConfigError`` for a bad list."""
        files = bundled_lists() if bundled else []
        if env and os.environ.get(ENV_VAR):
            files += _expand(p for p in os.environ[ENV_VAR].split(os.pathsep) if p)
        if paths is not None:
            files += _expand([paths] if isinstance(paths, (str, os.PathLike)) else paths)
        terms: list[Term] = []
        for f in files:
            category = _category_of(f)
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as ex:
                raise ConfigError(f"{f}: cannot read lexicon: {ex}", path=str(f)) from None
            terms += parse_list(text, category, f.name.removesuffix(".txt"), str(f))
        return cls(terms)

    def __len__(self) -> int:
        return len(self.terms)

    def __repr__(self) -> str:
        counts = {c: sum(t.category == c for t in self.terms) for c in CATEGORIES}
        return f"Lexicon({', '.join(f'{c}={n}' for c, n in counts.items() if n)})"

    def match(self, text: str) -> list[TermMatch]:
        """Every term found in ``text`` (overlapping ones too), in text order, strongest first."""
        norm = _normalise(text)
        if not norm.text:
            return []
        out = []
        for t in self.terms:
            for s, e in t.find(norm):
                out.append(TermMatch(t.term, t.category, t.weight, norm.starts[s], norm.ends[e - 1], t.list_name))
        out.sort(key=lambda m: (m.start, -m.weight, m.end))
        return out

    def scores(self, text: str) -> dict[str, float]:
        """Highest matched weight per category (categories without a match are left out)."""
        best: dict[str, float] = {}
        for m in self.match(text):
            best[m.category] = max(best.get(m.category, 0.0), m.weight)
        return best


#: ``match_fuzzy``: terms with at least this many letters (spaces not counted) may be one letter off.
FUZZY_MIN_LETTERS = 8


def _within_one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by exactly one letter inserted, deleted or replaced."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]


def match_fuzzy(text: str, lexicon: Lexicon, min_letters: int = FUZZY_MIN_LETTERS) -> list[TermMatch]:
    """What speech recognition needs beside ``Lexicon.match``: terms of at least ``min_letters``
    letters (no ``*`` terms) found with exactly one letter inserted, deleted or replaced, over the
    same number of whole words (``kill all the infidel`` for ``kill all the infidels``). Text and terms
    are normalised as for ``match``; spaces are ignored in the comparison. Exact matches are not
    returned (``match`` finds them). Measured for false matches in docs/speech.md."""
    norm = _normalise(text)
    if not norm.text:
        return []
    bounds = [(m.start(), m.end()) for m in re.finditer(r"\S+", norm.text)]
    words = [norm.text[s:e] for s, e in bounds]
    out = []
    for t in lexicon.terms:
        if t.term.startswith("*") or t.term.endswith("*"):
            continue
        core = t.core.replace(" ", "")
        if len(core) < min_letters:
            continue
        n = t.core.count(" ") + 1
        for k in range(len(words) - n + 1):
            s, e = bounds[k][0], bounds[k + n - 1][1]
            joined = "".join(words[k : k + n])
            if joined == core:  # equal once runs collapse: one doubled letter of the term heard once
                runs = [r for ch, r in zip(norm.text[s:e], norm.runs[s:e]) if ch != " "]
                if sum(r < tr for r, tr in zip(runs, t.runs)) == 1:
                    out.append(TermMatch(t.term, t.category, t.weight, norm.starts[s], norm.ends[e - 1], t.list_name))
            elif _within_one_edit(joined, core):
                out.append(TermMatch(t.term, t.category, t.weight, norm.starts[s], norm.ends[e - 1], t.list_name))
    out.sort(key=lambda m: (m.start, -m.weight, m.end))
    return out
