"""What the bot says about a lyrics file it will not read (an attachment or document sent
as lyrics, before ``separation.lyrics`` sees a byte of it)."""

from __future__ import annotations

from bot.chat.conversation.messages.numbers import megabytes

NOT_A_LYRICS_FILE = "Lyrics must be an .lrc file or a .txt file."
LYRICS_FILE_UNREADABLE = "I couldn't download your lyrics file. Please send it again."


def lyrics_file_too_large(limit_bytes: int) -> str:
    """A lyrics file over the download limit (``MAX_LYRICS_DOWNLOAD_BYTES``)."""
    return (
        f"That lyrics file is too big: lyrics files can be up to {megabytes(limit_bytes)} "
        "(an .lrc file or plain text)."
    )
