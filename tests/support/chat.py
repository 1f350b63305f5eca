"""The chat flow in tests without a platform: a user and a conversation, a replier that
records what the user would see, and uploads streamed from files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from bot.chat.conversation.controls import Button
from bot.chat.conversation.types import ChatUser, Conversation, OutgoingFile, SongUpload, UploadPlan

USER = ChatUser("telegram", "1", "Ann")
CHAT = Conversation("telegram", "1", message_id="10")


class RecordingReplier:
    """The platform boundary: records what the user would see."""

    def __init__(
        self,
        *,
        max_file_bytes: int = 50_000_000,
        max_download_bytes: int = 20_000_000,
        fail_uploads: bool = False,
    ) -> None:
        self.plan = UploadPlan(max_file_bytes=max_file_bytes, max_download_bytes=max_download_bytes)
        self.texts: list[str] = []
        self.files: list[OutgoingFile] = []
        self.buttons: list[list[list[Button]]] = []
        """The buttons of each text sent with some (``send_text_with_buttons``)."""
        self.fail_uploads = fail_uploads

    @property
    def upload_plan(self) -> UploadPlan:
        return self.plan

    async def send_text(self, text: str) -> int:
        self.texts.append(text)
        return len(self.texts)

    async def send_text_with_buttons(self, text: str, rows: list[list[Button]]) -> int:
        self.buttons.append(rows)
        return await self.send_text(text)

    async def edit_text(self, handle: int, text: str) -> None:
        self.texts.append(text)

    def message_ref(self, handle: int) -> str | None:
        return str(handle)

    def message_handle(self, ref: str) -> int | None:
        return int(ref)

    async def send_files(self, files: list[OutgoingFile]) -> None:
        if self.fail_uploads:
            raise ConnectionResetError("upload connection reset")
        self.files.extend(files)


def upload_of(
    path: Path, *, declared_size: int | None = None, chunk: int = 65536, **hints: str
) -> SongUpload:
    """A chat upload of ``path`` streamed in ``chunk``-byte pieces; ``declared_size``: what the
    platform claims (the real size unless given), ``hints``: other ``SongUpload`` fields."""
    data = path.read_bytes()

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(data), chunk):
            yield data[start : start + chunk]

    return SongUpload(
        stream=stream,
        file_name=path.name,
        declared_size=path.stat().st_size if declared_size is None else declared_size,
        **hints,
    )
