"""Files in and out of the shared result cache (``results/<cachekey>/`` in the blob store).

Workers upload songs (their outputs and their lossless stems), front-ends upload renders;
both write the files first and the manifest last, so a reader never sees half a result,
and every reader checks each file's size and SHA-256 against the manifest before anyone
uses it: a damaged blob is recomputed, never served.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.distributed.blobs import BlobStore
from bot.distributed.wire import MANIFEST_NAME, OutputFile, ResultManifest, result_prefix
from separation.cache.extras import COVER, audio_stems, kept_cover
from separation.cache.results import file_sha256
from separation.jobs import JobResult


async def read_manifest(blobs: BlobStore, cache_key: str) -> ResultManifest:
    """The manifest of the shared result ``cache_key``.

    Raises:
        BlobNotFoundError: no such result (or not finished).
        ValueError: the manifest is not one we wrote.
    """
    return ResultManifest.from_json(await blobs.get_bytes(result_prefix(cache_key) + MANIFEST_NAME))


async def write_manifest(blobs: BlobStore, manifest: ResultManifest) -> None:
    """Publish a result whose files are all uploaded (the last write of a result)."""
    await blobs.put_bytes(result_prefix(manifest.cache_key) + MANIFEST_NAME, manifest.to_json())


async def publish_result(
    blobs: BlobStore,
    result: JobResult,
    *,
    stems: list[OutputFile] | None = None,
    stems_scale: float = 1.0,
    render_of: str | None = None,
) -> None:
    """Upload ``result``'s files, then the manifest that lists them with the song's
    already uploaded ``stems`` (or, for a render, the song it was made from): the one way
    a song and a render enter the shared cache."""
    outputs = await upload_files(blobs, result.cache_key, result.outputs)
    manifest = ResultManifest(
        cache_key=result.cache_key,
        outputs=outputs,
        duration_seconds=result.duration_seconds,
        bitrate_kbps=result.bitrate_kbps,
        input_tags=dict(result.input_tags),
        created_at=time.time(),
        stems=stems or [],
        stems_scale=stems_scale,
        render_of=render_of,
        tag_lyrics=result.tag_lyrics,
        lyrics_timing=result.lyrics_timing,
    )
    await write_manifest(blobs, manifest)


async def upload_files(
    blobs: BlobStore, cache_key: str, files: dict[str, Path], *, suffix: str | None = None
) -> list[OutputFile]:
    """Upload ``files`` (name -> path) into the result's folder as ``<name><suffix>``
    (default: the file's own suffix); returns what the manifest lists for them."""
    prefix = result_prefix(cache_key)
    uploaded = []
    for name, path in files.items():
        key = f"{prefix}{name}{suffix or path.suffix}"
        digest = await asyncio.to_thread(file_sha256, path)
        await blobs.put_file(key, path)
        uploaded.append(OutputFile(name, key, path.stat().st_size, digest))
    return uploaded


async def upload_stems(
    blobs: BlobStore, cache_key: str, stems: dict[str, Path], *, suffix: str
) -> list[OutputFile]:
    """Upload a song's kept stems as ``<name><suffix>`` and its cover, if kept among
    them, under its own suffix (an image, never a stem: ``separation.cache.extras``)."""
    uploaded = await upload_files(blobs, cache_key, audio_stems(stems), suffix=suffix)
    cover = kept_cover(stems)
    if cover is not None:
        uploaded += await upload_files(blobs, cache_key, {COVER: cover})
    return uploaded


async def download_verified(
    blobs: BlobStore, files: list[OutputFile], folder: Path
) -> dict[str, Path]:
    """Download ``files`` into ``folder`` (name -> path), each checked against its size
    and SHA-256.

    Raises:
        BlobNotFoundError: a file is gone (evicted meanwhile, or never uploaded).
        ValueError: a file differs from what the manifest says.
    """
    downloaded: dict[str, Path] = {}
    for item in files:
        path = folder / Path(item.key).name
        await blobs.get_file(item.key, path)
        size = path.stat().st_size
        digest = await asyncio.to_thread(file_sha256, path)
        if (size, digest) != (item.size, item.sha256):
            raise ValueError(f"{item.key}: {size} bytes, sha256 {digest[:12]}...")
        downloaded[item.name] = path
    return downloaded
