# syntax=docker/dockerfile:1
# karaoke-bot for an NVIDIA GPU host (default) or CPU only:
#
#   docker build -t karaoke-bot .                                  # CUDA build of torch
#   docker build -t karaoke-bot:cpu --build-arg TORCH_VARIANT=cpu .
#   docker build --build-arg MODELS="htdemucs htdemucs_ft" .       # more weights baked in
#
#   docker run --gpus all -v karaoke-data:/data -e KARAOKE_TELEGRAM_TOKEN=... karaoke-bot
#
# Every install step is in docker/install.sh (see its header); this file only orders
# them. Weights are downloaded at build time into /opt/models (HF_HOME), so a running
# container never downloads anything and starts offline.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: a virtual environment with torch, the app and the model weights ---------
FROM ${PYTHON_IMAGE} AS builder
ARG TORCH_VARIANT=cuda
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=
ARG MODELS="htdemucs"
ENV VENV=/opt/venv \
    SRC=/src \
    HF_HOME=/opt/models \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --chmod=0755 docker/install.sh /usr/local/bin/karaoke-install
# torch first: the largest layer, rebuilt only when the variant or version changes.
RUN karaoke-install venv torch
COPY pyproject.toml README.md /src/
RUN karaoke-install app-deps
COPY bot /src/bot
COPY separation /src/separation
COPY storage /src/storage
# The weights are fetched with the installed `karaoke-bot models download`, then loaded
# once with the hub switched off, so a build cannot succeed with weights that a running
# container would not find.
RUN karaoke-install app models

# --- runtime: the venv, the weights, ffmpeg, and nothing to build with ----------------
FROM ${PYTHON_IMAGE} AS runtime
# The user step creates uid/gid 10001 (KARAOKE_UID's default), named in USER below.
COPY --chmod=0755 docker/install.sh /usr/local/bin/karaoke-install
RUN karaoke-install system-packages user
COPY --chmod=0755 docker/healthcheck.py /usr/local/bin/karaoke-healthcheck
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/models /opt/models
# HF_HUB_OFFLINE: weights come from the image only; the bot fails fast instead of
# waiting for a hub it cannot reach. The health server is on (inside the container
# only, until a port is published) so that HEALTHCHECK and Prometheus can ask.
ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/opt/models \
    HF_HUB_OFFLINE=1 \
    KARAOKE_DATA_DIR=/data \
    KARAOKE_HEALTH_ENABLED=true \
    KARAOKE_HEALTH_HOST=0.0.0.0 \
    KARAOKE_HEALTH_PORT=9108 \
    PYTHONUNBUFFERED=1
# The database, uploads, the result cache and job folders; config.toml may be put here too
# (the bot reads ./config.toml when present).
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python3", "/usr/local/bin/karaoke-healthcheck"]
# tini forwards SIGTERM to the bot and reaps the ffmpeg processes it starts.
ENTRYPOINT ["tini", "--", "karaoke-bot"]
CMD ["run"]
