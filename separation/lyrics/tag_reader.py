"""The child process that reads the lyrics in an upload's tags with mutagen, as JSON.

Run only by ``separation.lyrics.tags``, as ``python -P tag_reader.py FILE OUTPUT OPTIONS``,
under the sandbox's limits (``separation.audio.sandbox``): tags are parsed from a
stranger's file, so in a small process with bounded memory, CPU and wall time, never in
the bot's own. Like ``separation.audio.header_reader`` it is standalone (the standard
library and mutagen only), so the code that runs is this file whatever is installed.

It writes to ``OUTPUT`` one JSON object: ``{"candidates": [...], "notes": [...]}``, each
candidate ``{"tag": NAME, "text": TEXT}`` or, for an ID3 ``SYLT`` frame, ``{"tag": "SYLT",
"sylt": [[TEXT, MILLISECONDS], ...]}``; synced tags first. Texts are cut to the
``max_chars`` the parent passes (one past its own limit, so it can tell "too long"), SYLT
frames to :data:`MAX_SYLT_ENTRIES` pairs of :data:`MAX_ENTRY_CHARS`, all of it to
:data:`OUTPUT_BUDGET_BYTES`. Cleaning the text is the parent's job
(``separation.lyrics.clean``); here it is only cut.

Where lyrics live: Vorbis comments (FLAC, Ogg Vorbis/Opus/Speex) ``SYNCEDLYRICS``,
``LYRICS``, ``UNSYNCEDLYRICS``; APEv2 (WavPack, Monkey's Audio, Musepack) the same names;
ID3 (MP3, and WAV/AIFF with ID3) ``SYLT``, ``USLT`` and foobar2000's ``TXXX:LYRICS``-style
frames; MP4 ``©lyr``; ASF ``WM/Lyrics``. A SYLT frame timed in MPEG frames rather than
milliseconds is left out with a note: its times depend on the stream's frame length,
and no tagger in use writes it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

MAX_CANDIDATES = 8
MAX_SYLT_ENTRIES = 20_000
MAX_ENTRY_CHARS = 256
OUTPUT_BUDGET_BYTES = 2 * 2**20
"""All candidates together, as UTF-8 JSON (far below the file size limit the parent sets)."""
MAX_TIME_MS = 24 * 3600 * 1000
NO_MUTAGEN_EXIT = 3
"""The exit status when mutagen is not installed: the server's fault, not the upload's."""
OUT_OF_MEMORY = "Cannot allocate memory"
"""What this child writes to stderr when its memory limit stopped it (the sandbox's marker)."""

SYNCED_NAMES = ("SYNCEDLYRICS",)
PLAIN_NAMES = ("LYRICS", "UNSYNCEDLYRICS")
_SYLT_MILLISECONDS = 2
_SYLT_LYRIC_TYPES = (0, 1, 2)
"""SYLT content types: other, lyrics, transcription (not chords, events, URLs...)."""


def read_candidates(path: str, max_chars: int) -> dict[str, Any]:
    """The lyrics candidates of ``path``'s tags, synced first (see the module docstring)."""
    import mutagen

    notes: list[str] = []
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        return {"candidates": [], "notes": [f"mutagen: {str(exc)[:200]}"]}
    tags = None if audio is None else audio.tags
    if tags is None:
        return {"candidates": [], "notes": ["no tags"]}
    found = _id3(tags, max_chars, notes) if hasattr(tags, "getall") else _named(tags, max_chars)
    candidates: list[dict[str, Any]] = []
    spent = 0
    for candidate in found:
        cost = len(json.dumps(candidate, ensure_ascii=False).encode("utf-8"))
        if len(candidates) == MAX_CANDIDATES or spent + cost > OUTPUT_BUDGET_BYTES:
            notes.append(f"{candidate['tag']} left out: output budget")
            continue
        candidates.append(candidate)
        spent += cost
    return {"candidates": candidates, "notes": notes}


def _id3(tags: Any, max_chars: int, notes: list[str]) -> list[dict[str, Any]]:
    synced: list[dict[str, Any]] = []
    for frame in tags.getall("SYLT"):
        if frame.format != _SYLT_MILLISECONDS:
            notes.append("SYLT timed in MPEG frames left out")
        elif frame.type in _SYLT_LYRIC_TYPES:
            synced.append({"tag": "SYLT", "sylt": _sylt_entries(frame.text)})
    texts: list[dict[str, Any]] = []
    for frame in tags.getall("TXXX"):
        name = str(frame.desc).upper()
        if name in SYNCED_NAMES + PLAIN_NAMES:
            entry = [_text(f"TXXX:{name}", value, max_chars) for value in frame.text]
            (synced if name in SYNCED_NAMES else texts).extend(entry)
    texts.extend(_text("USLT", frame.text, max_chars) for frame in tags.getall("USLT"))
    return synced + texts


def _sylt_entries(pairs: Iterable[Any]) -> list[list[Any]]:
    entries: list[list[Any]] = []
    for text, time in pairs:
        if len(entries) == MAX_SYLT_ENTRIES:
            break
        if isinstance(time, int) and 0 <= time <= MAX_TIME_MS:
            entries.append([str(text)[:MAX_ENTRY_CHARS], time])
    return entries


def _named(tags: Any, max_chars: int) -> list[dict[str, Any]]:
    """Vorbis comments, APEv2, MP4 and ASF: lyrics under a name (case as the format has it)."""
    found: list[dict[str, Any]] = []
    for name in (*SYNCED_NAMES, *PLAIN_NAMES, "\xa9lyr", "WM/Lyrics"):
        try:
            value = tags.get(name)
        except (KeyError, ValueError, TypeError):
            value = None
        for text in _values(value):
            found.append(_text(name, text, max_chars))
    return found


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    texts = []
    for item in values:
        # APEv2 values have a kind (0: text); ASF attributes a .value; the rest are str.
        if getattr(item, "kind", 0) != 0:
            continue
        item = getattr(item, "value", item)
        if isinstance(item, str):
            texts.append(item)
    return texts


def _text(tag: str, text: Any, max_chars: int) -> dict[str, Any]:
    return {"tag": tag, "text": str(text)[:max_chars]}


def main(arguments: list[str]) -> int:
    """``tag_reader.py FILE OUTPUT OPTIONS_JSON``: write the candidates to ``OUTPUT``."""
    path, output, options = arguments
    try:
        found = read_candidates(path, int(json.loads(options)["max_chars"]))
    except ModuleNotFoundError as exc:
        print(f"mutagen is not installed: {exc}", file=sys.stderr)
        return NO_MUTAGEN_EXIT
    except (MemoryError, ImportError) as exc:
        print(f"{OUT_OF_MEMORY}: {type(exc).__name__} {exc}", file=sys.stderr)
        return 1
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(found, handle, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
