"""The child process that runs yt-dlp on one link and prints what it found as JSON.

Run only by ``bot.links.sites``, as ``python -I site_child.py PHASE REQUEST_JSON``, under
the sandbox's limits (``separation.audio.sandbox.run_sandboxed``): a site's pages and
media are parsed by yt-dlp in a small process with bounded memory, CPU, file size and
wall time, which the parent kills at its deadline. It is standalone (the standard
library and yt-dlp only), so the code that runs is this file whatever is installed.

yt-dlp is used as a library, never through a shell, and as a library it reads no
configuration file. Its options (:func:`_options`) allow only the operator's
extractors, go through the egress proxy, take no cookies, run no external downloader,
no ffmpeg and no post-processor, keep single items, and write only inside the private
folder the parent gives.

Phases: ``metadata`` extracts the item's details without downloading any media and
saves them (``site-info.json``) for ``download``, which downloads from those details,
never extracting again. The parent decides the refusals; this file only reports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

INFO_FILE = "site-info.json"
MEDIA_STEM = "site-media"
DIRECT_FORMATS = "bestaudio[protocol^=http][protocol!*=dash]/best[protocol^=http][protocol!*=dash]"
"""Formats downloaded over plain http(s) only: no HLS or DASH manifest, whose fragments
would be more URLs, and nothing that needs ffmpeg to merge."""
_ANY_FORMAT = f"{DIRECT_FORMATS}/bestaudio/best"
"""For the metadata phase: a selection that never fails, so a live or manifest-only item
is reported (and refused by the parent) rather than lost in a format error."""
_MESSAGE_CHARS = 300


class _Log:
    """yt-dlp's messages, kept (bounded) for the report instead of printed."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def debug(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        self._keep(message)

    def error(self, message: str) -> None:
        self._keep(message)

    def _keep(self, message: str) -> None:
        if len(self.messages) < 20:
            self.messages.append(message[:_MESSAGE_CHARS])


def _options(request: dict[str, Any], log: _Log, *, metadata: bool) -> dict[str, Any]:
    dest = request["dest"]
    return {
        "proxy": request["proxy"] or "",
        "allowed_extractors": request["extractors"] or ["none-at-all"],
        "noplaylist": True,
        "extract_flat": "in_playlist",
        "playlistend": 2,
        "cookiefile": None,
        "cookiesfrombrowser": None,
        "cachedir": False,
        "external_downloader": {},
        "hls_prefer_native": True,
        "fixup": "never",
        "postprocessors": [],
        "socket_timeout": request["socket_timeout"],
        "max_filesize": request["max_bytes"],
        "format": _ANY_FORMAT if metadata else DIRECT_FORMATS,
        "outtmpl": {"default": f"{MEDIA_STEM}.%(ext)s"},
        "paths": {"home": dest, "temp": dest},
        "restrictfilenames": True,
        "default_search": "error",
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "concurrent_fragment_downloads": 1,
        "writethumbnail": False,
        "writesubtitles": False,
        "logger": log,
        "quiet": True,
        "noprogress": True,
        "color": "no_color",
    }


def _summary(info: dict[str, Any]) -> dict[str, Any]:
    """What the parent needs to decide, from yt-dlp's info of the item."""
    entries = info.get("entries")
    return {
        "type": info.get("_type", "video"),
        "entries": len(list(entries)) if isinstance(entries, list) else None,
        "extractor": info.get("extractor_key") or info.get("extractor"),
        "id": info.get("id"),
        "title": info.get("track") or info.get("title"),
        "artist": info.get("artist") or info.get("creator") or info.get("uploader"),
        "duration": info.get("duration"),
        "is_live": info.get("is_live"),
        "live_status": info.get("live_status"),
        "filesize": info.get("filesize") or info.get("filesize_approx"),
        "protocol": info.get("protocol"),
    }


def _metadata(request: dict[str, Any], log: _Log) -> dict[str, Any]:
    import yt_dlp

    with yt_dlp.YoutubeDL(_options(request, log, metadata=True)) as ydl:
        info = ydl.extract_info(request["url"], download=False)
        if info is None:
            return {"outcome": "error", "messages": log.messages}
        clean = ydl.sanitize_info(info)
    if clean.get("_type", "video") == "video":
        Path(request["dest"], INFO_FILE).write_text(json.dumps(clean), encoding="utf-8")
    return {"outcome": "ok", **_summary(clean)}


def _download(request: dict[str, Any], log: _Log) -> dict[str, Any]:
    import yt_dlp

    written: list[str] = []
    options = {**_options(request, log, metadata=False), "post_hooks": [written.append]}
    info = json.loads(Path(request["dest"], INFO_FILE).read_text(encoding="utf-8"))
    with yt_dlp.YoutubeDL(options) as ydl:
        # Not download_with_info_file: when a download fails, it extracts the page again
        # and downloads that, past every check the parent made on the details.
        ydl.process_ie_result(ydl.sanitize_info(info, True), download=True)
    if not written:
        return {"outcome": "error", "messages": log.messages}
    return {"outcome": "ok", "path": written[-1]}


def main(arguments: list[str]) -> int:
    phase, request = arguments[1], json.loads(arguments[2])
    log = _Log()
    try:
        report = _metadata(request, log) if phase == "metadata" else _download(request, log)
    except Exception as error:  # yt-dlp's DownloadError and whatever a site provokes
        message = f"{type(error).__name__}: {error}"[:_MESSAGE_CHARS]
        report = {"outcome": "error", "messages": [*log.messages, message]}
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
