"""The cache key of a render, apart from the renderer: computing it loads no torch.

A distributed front-end looks renders up in the shared cache by this key without ever
rendering (``bot.distributed.render_requests``), so it must not import the render code.
"""

from __future__ import annotations

from typing import Any

from separation.cache.results import cache_key
from separation.jobs import RenderRequest


def render_key(request: RenderRequest) -> str:
    """The cache key of a render: the separation's key plus what changes the bytes.

    A video's bytes depend on its words and look (``VideoRequest.cache_token``), the
    controls and its size cap, never on the audio encoding or stem mode (both ignored
    for a video), so two videos that differ only there share one entry.
    """
    settings: dict[str, Any]
    if request.video is not None:
        settings = {
            "render": request.options.cache_token(),
            "video": request.video.cache_token(),
            "max_output_bytes": request.max_output_bytes,
        }
    else:
        spec = request.encoding
        settings = {
            "render": request.options.cache_token(),
            "format": spec.format,
            "bitrate_kbps": spec.bitrate_kbps,
            "wav_float": spec.wav_float,
            "max_output_bytes": request.max_output_bytes,
            "min_mp3_bitrate": request.min_mp3_bitrate,
            "stems": request.stems,
        }
    return cache_key(request.cache_key, settings)
