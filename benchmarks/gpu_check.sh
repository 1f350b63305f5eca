#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py) on a machine that has only its own Python and
# torch: what else it imports is installed, when missing, from a local wheel folder.
#
#   bash benchmarks/gpu_check.sh                        # cuda, the full check (< 6 min)
#   bash benchmarks/gpu_check.sh --device cpu --quick   # the smoke test
#   PYTHON=/opt/conda/bin/python WHEELS=/data/wheels bash benchmarks/gpu_check.sh
#
# The wheel folder is filled beforehand, on a machine with internet access, for the GPU
# machine's Python version and platform (README, "GPU check"):
#
#   pip download --dest benchmarks/wheels --no-deps --only-binary=:all: \
#       --python-version 3.11 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_28_x86_64 -r benchmarks/gpu_check_requirements.txt
#
# (--python-version: the GPU machine's `python3 --version`, run once per candidate
# version into the same folder if unsure; numpy and imageio-ffmpeg publish only
# manylinux_2_28 wheels, hence both platforms; aarch64 machines: *_aarch64.)
#
# pip installs with --no-deps and only the missing packages of that explicit list, into
# benchmarks/.gpu-check-deps (put on PYTHONPATH): it never replaces, upgrades or
# downloads anything of the machine's own, torch above all (demucs declares torch and
# torchaudio; neither is taken from the folder).
set -euo pipefail

PYTHON="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHEELS="${WHEELS:-benchmarks/wheels}"
DEPS="benchmarks/.gpu-check-deps"
REQUIREMENTS="benchmarks/gpu_check_requirements.txt"
# What gpu_check.py imports besides torch (python -c "import ..."; sys.modules shows the
# third-party ones: demucs, einops, julius, tqdm, yaml, numpy, ffmpeg, past, imageio_ffmpeg;
# av, which the header reader imports in its own child Python).
IMPORTS="import numpy, yaml, ffmpeg, imageio_ffmpeg, av, demucs.apply, demucs.htdemucs, \
demucs.pretrained, separation.pool, separation.pipeline, separation.model.batch_sweep"

fail() {
    echo "gpu_check.sh: $*" >&2
    exit 2
}

command -v "$PYTHON" >/dev/null 2>&1 || fail "no '$PYTHON' here; set PYTHON=/path/to/python"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "$("$PYTHON" --version 2>&1) is too old: karaoke-bot needs Python 3.11 or later"
"$PYTHON" -c 'import torch' 2>/dev/null ||
    fail "'$PYTHON' cannot import torch; set PYTHON to the Python that has the machine's torch"

# Installed by an earlier run: use it before deciding what is missing.
if [[ -d "$DEPS" ]]; then
    export PYTHONPATH="$ROOT/$DEPS${PYTHONPATH:+:$PYTHONPATH}"
fi

if ! "$PYTHON" -c "$IMPORTS" 2>/dev/null; then
    # The requirements this Python lacks (by distribution name): a package it already
    # has, numpy say, is kept, so nothing compiled against it changes under torch.
    missing="$(mktemp)"
    trap 'rm -f "$missing"' EXIT
    "$PYTHON" - "$REQUIREMENTS" >"$missing" <<'EOF'
import importlib.metadata
import re
import sys

for line in open(sys.argv[1], encoding="utf-8"):
    requirement = line.split("#", 1)[0].strip()
    if not requirement:
        continue
    name = re.split(r"[\s=<>!~;\[]", requirement, maxsplit=1)[0]
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        print(requirement)
EOF
    if [[ ! -s "$missing" ]]; then
        "$PYTHON" -c "$IMPORTS" ||
            fail "the packages are installed but an import fails (above); is this the right checkout?"
    fi
    [[ -d "$WHEELS" ]] || fail "missing packages: $(tr '\n' ' ' <"$missing")and no wheel \
folder at $WHEELS: fill it with the pip download command in benchmarks/gpu_check.sh, or set WHEELS"
    "$PYTHON" -m pip --version >/dev/null 2>&1 ||
        fail "'$PYTHON' has no pip to install from $WHEELS (python3 -m ensurepip --user?)"
    echo "gpu_check.sh: installing from $WHEELS into $DEPS: $(tr '\n' ' ' <"$missing")"
    "$PYTHON" -m pip install --no-index --find-links "$WHEELS" --no-deps \
        --target "$DEPS" --disable-pip-version-check --quiet -r "$missing"
    rm -f "$missing" # exec below ends the shell without running the EXIT trap
    export PYTHONPATH="$ROOT/$DEPS${PYTHONPATH:+:$PYTHONPATH}"
    "$PYTHON" -c "$IMPORTS" || fail "still cannot import everything after installing (above)"
fi

exec "$PYTHON" benchmarks/gpu_check.py "$@"
