# Minimal image; the operations issue adds GPU, multi-stage and a health check.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY separation ./separation
COPY storage ./storage
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir .
RUN useradd --create-home karaoke
USER karaoke
ENV KARAOKE_DATA_DIR=/data HF_HUB_OFFLINE=1
VOLUME ["/data"]
ENTRYPOINT ["karaoke-bot"]
CMD ["run", "--config", "/data/config.toml"]
