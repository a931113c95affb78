"""``ScanConfig``: the one typed scan configuration (checked values, unknown keys refused, plain
data for worker processes and Ray, ``resolve`` and the archive's fingerprints)."""

from __future__ import annotations

import json
import pickle
from dataclasses import fields
from pathlib import Path

import pytest

from framescan.config import ScanConfig
from framescan.errors import ConfigError
from framescan.limits import DEFAULT_LIMITS
from framescan.models import DEFAULT_MODEL


@pytest.fixture(autouse=True)
def _no_user_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No bank database and no user lexicons: fingerprints depend on the settings given only."""
    monkeypatch.setenv("FRAMESCAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FRAMESCAN_LEXICONS", raising=False)


def test_unknown_key_raises_naming_it_and_the_known_ones() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown keys \['fsp'\] \(known: fps, every, .*lexicons, speech, speech_model, speech_languages, transcript\)",
    ):
        ScanConfig.from_dict({"fsp": 1})
    with pytest.raises(TypeError, match="fsp"):
        ScanConfig(fsp=1)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"unknown limits \['max_second'\]"):
        ScanConfig.from_dict({"limits": {"max_second": 3}})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fps": 1, "every": 2}, "choose one sampling mode: fps, every, keyframes, all or adaptive"),
        ({"keyframes": True, "adaptive": True}, "choose one sampling mode"),
        ({"fps": 0}, r"sampling fps must be > 0, got 0"),
        ({"fps": -1.5}, r"sampling fps must be > 0, got -1.5"),
        ({"every": 0}, r"--every takes a whole number >= 1, got 0"),
        ({"batch_size": 0}, r"batch_size must be a whole number >= 1 \(or None: chosen from the machine\), got 0"),
        ({"threads": -2}, r"threads must be a whole number >= 1 .*got -2"),
        ({"decode_threads": 1.5}, r"decode_threads must be a whole number >= 1 .*got 1.5"),
        ({"threads": True}, r"threads must be a whole number >= 1 .*got True"),
        ({"models": "nudenet-320n"}, r"models must be a list of names or paths, got the single value 'nudenet-320n'"),
        ({"lexicons": "words.txt"}, r"lexicons must be a list"),
        ({"limits": {"max_frames": 0}}, r"limit max_frames must be > 0, got 0"),
    ],
)
def test_each_invalid_value_raises(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ScanConfig.from_dict(settings)


def test_to_dict_from_dict_round_trip_and_pickle(tmp_path: Path) -> None:
    config = ScanConfig(
        every=3,
        models=["nudenet-320n"],
        policy=tmp_path / "p.json",
        threads=2,
        batch_size=4,
        early_exit=True,
        limits=DEFAULT_LIMITS.updated(max_seconds_per_clip=30),
        banks=False,
        ocr=True,
        lexicons=[tmp_path / "words"],
    )
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data, "JSON-safe"
    assert data["models"] == ["nudenet-320n"] and data["policy"] == str(tmp_path / "p.json")
    assert data["limits"]["max_seconds_per_clip"] == 30
    assert ScanConfig.from_dict(data) == config
    assert pickle.loads(pickle.dumps(config)) == config
    assert ScanConfig().to_dict() == {}, "only what differs from the defaults"
    assert ScanConfig(fps=1).to_dict() == {"fps": 1}


def test_resolve_fills_defaults_and_is_idempotent(tmp_path: Path) -> None:
    policy = tmp_path / "strict.json"
    policy.write_text(json.dumps({"categories": {"sexual": {"review": 0.2, "block": 0.3}}}))
    resolved = ScanConfig(policy=str(policy), fps=1).resolve()
    assert resolved.models == (DEFAULT_MODEL,)
    assert isinstance(resolved.policy, dict) and resolved.policy["name"] == "strict"
    assert resolved.policy["categories"]["sexual"]["block"] == 0.3
    assert resolved.banks is False, "no default bank database in FRAMESCAN_HOME"
    assert resolved.resolve() == resolved
    assert ScanConfig.from_dict(json.loads(json.dumps(resolved.to_dict()))) == resolved
    assert resolved.fingerprint() == ScanConfig(policy=str(policy), fps=1).fingerprint()
    assert resolved.scanner_kwargs()["policy"].to_dict() == resolved.policy, "a Policy for the Scanner"


def test_resolve_names_the_default_bank_database(tmp_path: Path) -> None:
    from framescan.banks import default_db_path

    db = default_db_path()
    db.parent.mkdir(parents=True)
    db.write_bytes(b"")
    assert ScanConfig().resolve().banks == str(db)
    assert ScanConfig(banks=False).resolve().banks is False


def test_missing_policy_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy file .*nope\.json does not exist"):
        ScanConfig(policy=str(tmp_path / "nope.json")).resolve()


#: The archive's fingerprints (models_fp, config_fp) of these settings, as computed by
#: ``framescan.archive.compute_fingerprints(settings, limits)`` before ``ScanConfig`` existed
#: (commit 561cde3, with FRAMESCAN_HOME empty and FRAMESCAN_LEXICONS unset; the policy file
#: ``strict.json`` as written in the test). They must not change: an existing archive store
#: would rescan every file after an upgrade.
OLD_FINGERPRINTS = {
    "default": ({}, "19d2e581c1590d52d8ae74f68b7c9a58", "f1ee9a2e7863dcd1f5f51ae8eb8e4dad"),
    "fps1": ({"fps": 1}, "19d2e581c1590d52d8ae74f68b7c9a58", "cbd95ddb90f10d7e6e118b1f1bb1032e"),
    "every3_early": (
        {"every": 3, "early_exit": True, "banks": False},
        "19d2e581c1590d52d8ae74f68b7c9a58",
        "99cc479f8427c8bf3037ea85d85add07",
    ),
    "adaptive_square": (
        {"adaptive": True, "models": ["nudenet-320n"]},
        "eb9a7c18a04534bc79956c9dee4809e5",
        "8bfda3b5736772f5c15471b9d577b698",
    ),
    "policy_limits": (
        {"policy": "strict.json", "all_frames": True, "limits": {"max_seconds_per_clip": 30}},
        "19d2e581c1590d52d8ae74f68b7c9a58",
        "51d952ade333c5d5480cac4459a3dc8f",
    ),
    "ocr": ({"ocr": True, "keyframes": True}, "19d2e581c1590d52d8ae74f68b7c9a58", "99f9e7502db5bcc4bcf63d6e50f7cee7"),
}


@pytest.mark.parametrize("case", sorted(OLD_FINGERPRINTS))
def test_fingerprints_equal_the_old_values(case: str, tmp_path: Path) -> None:
    settings, models_fp, config_fp = OLD_FINGERPRINTS[case]
    if "policy" in settings:
        policy = tmp_path / settings["policy"]
        policy.write_text(json.dumps({"categories": {"sexual": {"review": 0.2, "block": 0.3}}}))
        settings = {**settings, "policy": str(policy)}
    fp = ScanConfig.from_dict(settings).fingerprint()
    assert fp.to_dict() == {"models_fp": models_fp, "config_fp": config_fp}


def test_fields_are_the_scanner_arguments() -> None:
    """Every ``Scanner`` argument has its field (and no field is unknown to the Scanner)."""
    import inspect

    from framescan.pipeline import Scanner

    params = [p for p in inspect.signature(Scanner.__init__).parameters if p != "self"]
    assert sorted(params) == sorted(f.name for f in fields(ScanConfig))
