"""Word lists: normalisation, matching rules, user lists and their errors, the bundled lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from framescan.errors import ConfigError, ErrorCode
from framescan.lexicon import ENV_VAR, Lexicon, bundled_lists, normalise, parse_list
from framescan.models import CATEGORIES


@pytest.fixture(scope="module")
def bundled() -> Lexicon:
    return Lexicon.load(env=False)


def user_list(tmp_path: Path, text: str, name: str = "bullying.test.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Dasar GOBLOK", "dasar goblok"),
        ("gooblookkk", "goblok"),  # repeats collapse
        ("g00bl0k", "goblok"),  # leetspeak
        ("4nj1ng", "anjing"),
        ("$tup1d @ss", "stupid as"),
        ("7olol 5ekali 3h", "tolol sekali eh"),
        ("Café naïve Ñoño", "cafe naive nono"),  # diacritics dropped
        ("ｇｏｂｌｏｋ", "goblok"),  # full-width forms (NFKD)
        ("сlаss", "clas"),  # Cyrillic look-alikes
        ("  bunuh,   diri!!! aja...  ", "bunuh diri aja"),  # punctuation and spaces
        ("kafir-kafir", "kafir kafir"),
        ("don't", "dont"),  # apostrophes vanish
        ("g o b l o k banget", "goblok banget"),  # spelled-out letters joined
        ("b.o.d.o.h", "bodoh"),
        ("k-y-s", "kys"),
        ("I am a b", "i am a b"),  # fewer than three single letters in a row: kept apart
        ("#️⃣🔥", ""),
        ("", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_match_reports_term_category_weight_and_original_span(bundled: Lexicon) -> None:
    text = "Wkwk DASAR GOOBLOOKKK!!"
    hits = bundled.match(text)
    phrase = next(m for m in hits if m.term == "dasar goblok")
    assert (phrase.category, phrase.list_name) == ("bullying", "bullying.id")
    assert phrase.weight >= 0.6
    assert text[phrase.start : phrase.end] == "DASAR GOOBLOOKKK"
    assert any(m.term == "goblok*" and text[m.start : m.end] == "GOOBLOOKKK" for m in hits)
    assert bundled.scores(text) == {"bullying": phrase.weight}


@pytest.mark.parametrize(
    "text,term,category",
    [
        ("kamu g0bl0kkk", "goblok*", "bullying"),
        ("gobloknya minta ampun", "goblok*", "bullying"),  # '*': Indonesian suffixes
        ("bunuhdiri aja lu", "bunuh diri aja", "bullying"),  # OCR dropped the phrase's space
        ("K I L L   Y O U R S E L F", "kill yourself", "bullying"),
        ("just kys", "kys", "bullying"),
        ("Bunuh semua kafir!", "bunuh semua kafir", "hate"),
        ("ISIS", "isis", "extremism"),
        ("daulah islamiyah", "daulah islamiyah", "extremism"),
        ("heil hitler 1488", "14 88", "extremism"),
        ("perangi th0ghut", "perangi thoghut", "extremism"),
    ],
)
def test_bundled_lists_find(bundled: Lexicon, text: str, term: str, category: str) -> None:
    assert (term, category) in {(m.term, m.category) for m in bundled.match(text)}


@pytest.mark.parametrize(
    "text",
    [
        "selamat pagi semua, jangan lupa makan siang ya",
        "analisis data kelas tiga",  # contains "isis"
        "asuransi jiwa dan tabungan",  # contains "asu"
        "bunga begonia di taman",  # contains "bego"
        "liburan ke taiwan",
        "babinsa membantu warga",  # contains "babi"
        "first class assignment",  # contains "ass"
        "as soon as possible",
        "resep nasi goreng kampung paling enak",
        "happy birthday mama, love you so much",
        "surat al kafirun",
    ],
)
def test_bundled_lists_leave_ordinary_text_alone(bundled: Lexicon, text: str) -> None:
    assert bundled.match(text) == []


def test_ambiguous_terms_stay_below_block_and_strong_ones_reach_it(bundled: Lexicon) -> None:
    block, review = 0.6, 0.4  # policy defaults
    for text in ("kafir", "jihad", "goblok", "loser", "isis"):
        assert max(bundled.scores(text).values()) < block, text
    for text in ("kafir", "goblok", "isis"):
        assert max(bundled.scores(text).values()) >= review, text
    for text in ("bunuh diri aja", "kill yourself", "bunuh semua kafir", "gas the jews", "perangi thoghut"):
        assert max(bundled.scores(text).values()) >= 0.9, text


def test_bundled_lists_are_well_formed(bundled: Lexicon) -> None:
    files = bundled_lists()
    assert {f.name for f in files} == {
        f"{c}.{lang}.txt" for c in ("hate", "bullying", "extremism") for lang in ("id", "en")
    }
    for f in files:
        terms = parse_list(f.read_text(), f.name.split(".")[0], f.stem, str(f))
        assert 20 <= len(terms) <= 60, f
        assert all(0 < t.weight <= 1 for t in terms)
        for t in terms:  # every term finds itself
            written = t.term.strip("*")
            assert any(m.term == t.term for m in bundled.match(written)), t.term
    assert {t.category for t in bundled.terms} <= set(CATEGORIES)


def test_word_boundaries_and_doubled_letters(tmp_path: Path) -> None:
    lx = Lexicon.load(user_list(tmp_path, "0.5 ass\n0.5 kil yourself\n"), bundled=False, env=False)
    assert lx.match("class act") == []
    assert lx.match("as if") == []  # 'ass' collapses to 'as': its doubled s must be doubled in the text
    assert [m.term for m in lx.match("what an ass")] == ["ass"]
    assert [m.term for m in lx.match("ASSSS")] == ["ass"]
    assert lx.match("assistant") == []
    # written with one 'l', the term accepts both spellings
    assert [m.term for m in lx.match("kil yourself")] == ["kil yourself"]
    assert [m.term for m in lx.match("killl yourself")] == ["kil yourself"]


def test_wildcards(tmp_path: Path) -> None:
    lx = Lexicon.load(user_list(tmp_path, "0.5 tolol*\n0.5 *bodoh\n"), bundled=False, env=False)
    assert [m.term for m in lx.match("tololnya")] == ["tolol*"]
    assert [m.term for m in lx.match("sibodoh")] == ["*bodoh"]
    assert lx.match("bodohnya") == []
    assert lx.match("atolol") == []


def test_user_lists_add_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "lists"
    d.mkdir()
    user_list(d, "# house rules\n0.9 si paling benar  # a local insult\n0 goblok*\n", "bullying.house.txt")
    user_list(d, "0.7 zzkelompok\n", "extremism.house.txt")
    (d / "notes.md").write_text("not a list")
    lx = Lexicon.load(d, env=False)
    assert len(lx) == len(Lexicon.load(env=False)) + 2 - 1  # weight 0 switched goblok* off
    hit = lx.match("Si Paling Benar")[0]
    assert (hit.term, hit.category, hit.weight, hit.list_name) == ("si paling benar", "bullying", 0.9, "bullying.house")
    assert "goblok*" not in {m.term for m in lx.match("gobloknya")}
    assert lx.scores("zzkelompok") == {"extremism": 0.7}
    # the environment variable adds lists too (files or directories, os.pathsep-separated)
    monkeypatch.setenv(ENV_VAR, str(d / "extremism.house.txt"))
    assert Lexicon.load(bundled=False).scores("zzkelompok") == {"extremism": 0.7}
    assert Lexicon.load(bundled=False, env=False).scores("zzkelompok") == {}


@pytest.mark.parametrize(
    "text,line,message",
    [
        ("0.5 ok\nbad line\n", 2, "expected '<weight> <term>'"),
        ("# c\n\n0.5\n", 3, "expected '<weight> <term>'"),
        ("0.5 ok\n1.5 too strong\n", 2, "not between 0 and 1"),
        ("-0.1 negative\n", 1, "not between 0 and 1"),
        ("0.5 go*blok\n", 1, "'*' may only start or end"),
        ("0.5 x\n", 1, "fewer than 2 letters"),
        ("0.5 !!!\n", 1, "fewer than 2 letters"),
    ],
)
def test_malformed_list_names_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = user_list(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        Lexicon.load(path, bundled=False, env=False)
    assert f"{path}:{line}: " in str(err.value) and message in str(err.value)
    assert err.value.code is ErrorCode.CONFIG_ERROR
    assert err.value.details == {"path": str(path), "line": line}


def test_bad_file_name_or_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must start with a category"):
        Lexicon.load(user_list(tmp_path, "0.5 ok\n", "insults.txt"), bundled=False, env=False)
    with pytest.raises(ConfigError, match="does not exist"):
        Lexicon.load(tmp_path / "missing.txt", env=False)
    bad = tmp_path / "hate.bin.txt"
    bad.write_bytes(b"0.5 \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read"):
        Lexicon.load(bad, bundled=False, env=False)
