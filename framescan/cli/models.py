"""``framescan models``: the models framescan knows, with file, sha256 and licence."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import ModelError

NAME = "models"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="list the available models",
        description="List the models framescan knows (shipped manifests and $FRAMESCAN_MODELS), each with its "
        "file, sha256, the categories it feeds and its licence; the one used by default is marked. "
        "Pass a name to 'framescan scan --model'.",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.add_argument(
        "--verify",
        action="store_true",
        help="hash each model file and compare it with its manifest (and the speech model's joined file with "
        "its sha256, joining it from the installed wheels when missing)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from ..models import DEFAULT_MODEL, list_manifests

    rows = []
    for m in list_manifests():
        row: dict[str, Any] = {
            "name": m.name,
            "default": m.name == DEFAULT_MODEL,
            "decoder": m.output.decoder,
            "categories": list(m.categories),
            "sha256": m.sha256,
            "license": m.license,
            "manifest": m.source,
        }
        try:
            row["path"] = str(m.verified_file() if args.verify else m.resolve_file())
            row["status"] = "verified" if args.verify else "present"
        except ModelError as ex:
            row["path"], row["status"] = None, f"unavailable: {ex.message}"
        rows.append(row)
    from ..speech import model_status

    rows.append(model_status(args.verify))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        default = ", the default" if r["default"] else ""
        print(f"{r['name']}  ({r['decoder']}; feeds: {', '.join(r['categories']) or 'nothing'}{default})")
        print(f"  path:     {r['path'] or '-'}  [{r['status']}]")
        print(f"  sha256:   {r['sha256']}")
        for k, v in r["license"].items():
            print(f"  license:  {k}: {v}")
    return 0
