#!/usr/bin/env bash
# The install steps of karaoke-bot's Docker image, one subcommand each.
#
# The Dockerfile only calls this script, so every step can be read, dry-run and tested
# on a machine without a Docker engine (tests/ops/test_docker.py does):
#
#   docker/install.sh [--dry-run] STEP...
#
# Steps (in the order the Dockerfile runs them):
#   system-packages  ffmpeg, tini and CA certificates from Debian (runtime stage)
#   user             the unprivileged user the bot runs as, owner of /data
#   venv             a virtual environment at $VENV (builder stage)
#   torch            torch $TORCH_VERSION, CUDA or CPU build ($TORCH_VARIANT)
#   app-deps         the dependencies from $SRC/pyproject.toml (torch kept as installed)
#   app              karaoke-bot itself from $SRC, without dependencies
#   models           download $MODELS into $HF_HOME, then prove they load offline
#
# Settings (environment; Docker build arguments become environment variables):
#   TORCH_VARIANT    cuda (default) or cpu
#   TORCH_VERSION    default 2.13.0
#   TORCH_INDEX_URL  a wheel index for torch; default: PyPI for cuda (its Linux wheels are
#                    CUDA builds), https://download.pytorch.org/whl/cpu for cpu
#   VENV             default /opt/venv;  VENV_OPTIONS: extra `python -m venv` options
#   PIP_OPTIONS      extra options for every pip install (e.g. --no-build-isolation)
#   SRC              the project folder with pyproject.toml, default /src
#   MODELS           space-separated model names, default "htdemucs"
#   HF_HOME          where the weights go, default /opt/models
#   KARAOKE_UID      the bot user's uid and gid, default 10001
#   PYTHON           the interpreter that creates the venv, default python3
set -euo pipefail

TORCH_VARIANT="${TORCH_VARIANT:-cuda}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
VENV="${VENV:-/opt/venv}"
VENV_OPTIONS="${VENV_OPTIONS:-}"
PIP_OPTIONS="${PIP_OPTIONS:-}"
SRC="${SRC:-/src}"
MODELS="${MODELS:-htdemucs}"
HF_HOME="${HF_HOME:-/opt/models}"
KARAOKE_UID="${KARAOKE_UID:-10001}"
PYTHON="${PYTHON:-python3}"
DATA_DIR=/data
DRY_RUN=0

die() {
    echo "install.sh: $*" >&2
    exit 2
}

# Print the command; run it unless --dry-run. Arguments are shell-quoted when printed,
# so the dry-run output is exactly what would run.
run() {
    local quoted
    printf -v quoted '%q ' "$@"
    echo "+ ${quoted% }"
    if [ "$DRY_RUN" -eq 0 ]; then
        "$@"
    fi
}

pip_install() {
    # shellcheck disable=SC2086  # PIP_OPTIONS is a list of options on purpose
    run "$VENV/bin/python" -m pip install --no-cache-dir $PIP_OPTIONS "$@"
}

step_system_packages() {
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends ffmpeg tini ca-certificates
    # The package lists are only needed to install; they would add ~20 MB to the image.
    run find /var/lib/apt/lists -mindepth 1 -delete
}

step_user() {
    run groupadd --system --gid "$KARAOKE_UID" karaoke
    run useradd --system --uid "$KARAOKE_UID" --gid "$KARAOKE_UID" --no-create-home \
        --home-dir "$DATA_DIR" --shell /usr/sbin/nologin karaoke
    run mkdir -p "$DATA_DIR"
    run chown "$KARAOKE_UID:$KARAOKE_UID" "$DATA_DIR"
}

step_venv() {
    # shellcheck disable=SC2086  # VENV_OPTIONS is a list of options on purpose
    run "$PYTHON" -m venv $VENV_OPTIONS "$VENV"
}

torch_index_url() {
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
        echo "$TORCH_INDEX_URL"
    elif [ "$TORCH_VARIANT" = cpu ]; then
        echo https://download.pytorch.org/whl/cpu
    fi
}

step_torch() {
    local index
    index="$(torch_index_url)"
    if [ -n "$index" ]; then
        pip_install "torch==$TORCH_VERSION" --index-url "$index"
    else
        pip_install "torch==$TORCH_VERSION"
    fi
}

# Reads pyproject.toml's [project] dependencies into a requirements file, with the
# "postgres" and "distributed" extras: one image runs a single host, a front-end or a
# worker, on either database, without a rebuild.
READ_DEPENDENCIES='import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project["optional-dependencies"]
wanted = project["dependencies"] + extras["postgres"] + extras["distributed"]
open(sys.argv[2], "w").write("\n".join(wanted) + "\n")'

step_app_deps() {
    # A layer of its own, so editing the code does not reinstall every dependency.
    # torch is named again with its version so that no dependency can swap the build
    # chosen above (CPU for CUDA or the other way round): pip fails loudly instead.
    local requirements="$VENV/karaoke-requirements.txt"
    run "$VENV/bin/python" -c "$READ_DEPENDENCIES" "$SRC/pyproject.toml" "$requirements"
    pip_install -r "$requirements" "torch==$TORCH_VERSION"
}

step_app() {
    pip_install --no-deps "$SRC"
}

step_models() {
    local model
    for model in $MODELS; do
        run env HF_HOME="$HF_HOME" "$VENV/bin/karaoke-bot" models download "$model"
        # The running container is offline: prove the weights load without the hub.
        run env HF_HOME="$HF_HOME" HF_HUB_OFFLINE=1 "$VENV/bin/python" -c \
            "import sys; from separation.model.loading import is_available_locally as ok; sys.exit(not ok(sys.argv[1]))" \
            "$model"
    done
}

main() {
    if [ "${1:-}" = "--dry-run" ]; then
        DRY_RUN=1
        shift
    fi
    [ "$#" -gt 0 ] || die "usage: install.sh [--dry-run] STEP... (see the top of this file)"
    case "$TORCH_VARIANT" in
        cuda | cpu) ;;
        *) die "TORCH_VARIANT must be cuda or cpu, not '$TORCH_VARIANT'" ;;
    esac
    local step
    for step in "$@"; do
        case "$step" in
            system-packages | user | venv | torch | app-deps | app | models) ;;
            *) die "unknown step '$step'" ;;
        esac
    done
    for step in "$@"; do
        "step_${step//-/_}"
    done
}

main "$@"
