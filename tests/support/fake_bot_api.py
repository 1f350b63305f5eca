"""A fake Telegram Bot API server on 127.0.0.1 that python-telegram-bot talks to.

It answers like the Bot API would (``{"ok": true, "result": ...}``), serves updates from
a queue through ``getUpdates`` long polling (bounded waits), serves uploaded songs
through ``getFile`` and the file endpoint, and records every call — including the bytes
of multipart uploads — so tests can assert on what a user would see. Errors such as
429 ``RetryAfter`` can be injected per method, and connections dropped.

Like the real Bot API (https://core.telegram.org/bots/api): an unknown method is a 404;
a sent message keeps its ``reply_markup`` (an inline keyboard comes back in the message,
and in any later message replying to it); ``answerCallbackQuery`` of a query that was
never sent, or answered already, is 400 "query is too old ... or query ID is invalid";
an edit to the text a message already has is 400 "message is not modified"; a text over
4,096 characters is 400 "message is too long"; ``getFile`` of a file over 20 MB is 400
"file is too big" (unless ``local_mode``, where the local Bot API server answers with a
path on its own disk and has no such limit); an upload over 50 MB is 413 "Request Entity
Too Large". ``sendVideo`` answers a message with a ``video`` (its width, height and
duration as the request gave them, the caption kept); without a video it is 400 "there is
no video in the request", with a caption over 1,024 characters 400 "message caption is
too long".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token-never-logged"
DOWNLOAD_LIMIT = 20_000_000
UPLOAD_LIMIT = 50_000_000
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
"""Characters of a media message's caption."""
"""Characters of a message's text (sendMessage answers 400 "message is too long")."""
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_ANSWERED_TRUE = {
    "setMyCommands",
    "deleteMyCommands",
    "setWebhook",
    "deleteWebhook",
    "deleteMessage",
    "sendChatAction",
    "close",
    "logOut",
}
"""Methods the Bot API answers with ``true``; any other method without a handler is 404."""
BOT_USER = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Karaoke",
    "username": "karaoke_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class RecordedCall:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """Field name -> (file name, content) for multipart uploads."""
    at: float = field(default_factory=time.monotonic)


@dataclass
class InjectedError:
    error_code: int
    description: str
    retry_after: int | None = None


class FakeBotApi:
    """Start with ``await api.start()``; point PTB at ``api.base_url``/``api.base_file_url``."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.polls = 0
        """getUpdates calls (not recorded in ``calls``: there are many)."""
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._files: dict[str, Path] = {}
        self._errors: dict[str, list[InjectedError]] = {}
        self._new_update = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._drops: dict[str, int] = {}
        self._texts: dict[tuple[str, int], str] = {}
        """(chat id, message id) -> the text it shows (for "message is not modified")."""
        self._sent: dict[int, dict[str, Any]] = {}
        """id(recorded call) -> the message it returned."""
        self._query_ids = itertools.count(9000)
        self._open_queries: set[str] = set()
        """Callback queries pushed and not answered yet."""
        self.port = 0
        self.download_limit = DOWNLOAD_LIMIT
        self.upload_limit = UPLOAD_LIMIT
        self.local_mode = False
        """Answer ``getFile`` like a local Bot API server: an absolute path, no size limit."""
        self.file_downloads = 0
        """Requests to the file endpoint (none in local mode: files are read from disk)."""
        self._files_released = asyncio.Event()
        self._files_released.set()
        self.on_confirm: Callable[[list[dict[str, Any]]], None] | None = None
        """Called with the updates a ``getUpdates`` offset confirms, as it confirms them
        (Telegram forgets them then: what the bot has not recorded by now is lost)."""

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self, port: int = 0) -> None:
        """Listen on ``port`` (0: any free one; a fixed one to come up "later")."""
        app = web.Application(client_max_size=200 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.*}", self._handle_file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- test controls ------------------------------------------------------------------
    def add_file(self, path: Path) -> tuple[str, int]:
        """Make ``path`` downloadable; returns (file_id, size)."""
        file_id = f"file-{next(self._file_ids)}"
        self._files[file_id] = path
        return file_id, path.stat().st_size

    def forget_file(self, file_id: str) -> None:
        """Stop handing out ``file_id`` (``getFile`` answers "invalid file_id")."""
        self._files.pop(file_id, None)

    def hold_files(self) -> None:
        """Make file downloads wait (counted in ``file_downloads`` as they arrive) until
        :meth:`release_files`: a download in progress for as long as a test needs."""
        self._files_released.clear()

    def release_files(self) -> None:
        self._files_released.set()

    def push_update(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **update})
        self._new_update.set()
        return update_id

    @property
    def unconfirmed_updates(self) -> int:
        """Updates the bot has not confirmed yet (PTB confirms an update by asking for the
        next ones, after it put the update in its queue)."""
        return len(self._updates)

    def fail_next(self, method: str, error: InjectedError, times: int = 1) -> None:
        self._errors.setdefault(method, []).extend([error] * times)

    def drop_next(self, method: str, times: int = 1) -> None:
        """Close the connection of the next ``times`` calls of ``method`` without an answer
        (the call is recorded: the request did arrive)."""
        self._drops[method] = self._drops.get(method, 0) + times

    @property
    def open_queries(self) -> set[str]:
        """Callback queries pushed and never answered (their client still spins)."""
        return set(self._open_queries)

    def calls_to(self, *methods: str) -> list[RecordedCall]:
        return [call for call in self.calls if call.method in methods]

    def texts_in_chat(self, chat_id: int, *, since: int = 0) -> list[str]:
        """Every text the bot sent or edited into ``chat_id``, in order; with ``since``,
        only those of ``calls[since:]``."""
        return [
            call.params.get("text", "")
            for call in self.calls[since:]
            if call.method in ("sendMessage", "editMessageText")
            and str(call.params.get("chat_id")) == str(chat_id)
        ]

    async def wait_for(self, predicate, within: float = 30.0) -> None:
        """Poll (bounded) until ``predicate(self)`` is true."""
        deadline = time.monotonic() + within
        while not predicate(self):
            if time.monotonic() > deadline:
                recent = [(c.method, c.params.get("text")) for c in self.calls[-8:]]
                raise AssertionError(f"timed out waiting; last calls: {recent}")
            await asyncio.sleep(0.05)

    def press(self, message: dict[str, Any], *, user_id: int, data: str) -> dict[str, Any]:
        """A ``callback_query`` update: ``user_id`` pressed the button with ``data`` under
        ``message`` (a message the bot sent)."""
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        return {
            "callback_query": {
                "id": query_id,
                "from": {"id": user_id, "is_bot": False, "first_name": "Ann", "username": "ann"},
                "message": message,
                "chat_instance": "42",
                "data": data,
            }
        }

    def sent_message(self, call: RecordedCall) -> dict[str, Any]:
        """The message the bot got back for ``call`` (to reply to, or press a button of)."""
        return self._sent[id(call)]

    # -- update builders ----------------------------------------------------------------
    def message(
        self,
        *,
        chat_id: int,
        user_id: int,
        text: str | None = None,
        chat_type: str = "private",
        reply_to: dict[str, Any] | None = None,
        **attachments: Any,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {
                "id": chat_id,
                "type": chat_type,
                **({"first_name": "Ann"} if chat_type == "private" else {"title": "G"}),
            },
            "from": {"id": user_id, "is_bot": False, "first_name": "Ann", "username": "ann"},
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            elif entities := self.mention_entities(text):
                message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update(attachments)
        return message

    @staticmethod
    def mention_entities(text: str) -> list[dict[str, Any]]:
        """A ``mention`` entity for the bot's @username in ``text``, as Telegram adds it."""
        handle = "@" + BOT_USER["username"]
        if handle not in text:
            return []
        return [{"type": "mention", "offset": text.index(handle), "length": len(handle)}]

    def audio_attachment(
        self,
        path: Path,
        *,
        kind: str = "audio",
        declared_size: int | None = None,
        mime_type: str = "audio/mpeg",
        title: str | None = None,
        performer: str | None = None,
        file_name: str | None = None,
        duration: int = 20,
    ) -> dict[str, Any]:
        file_id, size = self.add_file(path)
        attachment: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": declared_size if declared_size else size,
        }
        if kind in ("audio", "voice", "video", "video_note"):
            attachment["duration"] = duration
        if kind == "video_note":
            attachment["length"] = 240
        if kind == "video":
            attachment.update(width=64, height=64)
        if kind in ("audio", "voice", "video", "document"):
            attachment["mime_type"] = mime_type
        if kind in ("audio", "document", "video"):
            attachment["file_name"] = file_name or path.name
        if kind == "audio":
            attachment.update({k: v for k, v in (("title", title), ("performer", performer)) if v})
        return {kind: attachment}

    # -- handlers -----------------------------------------------------------------------
    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, tuple[str, bytes]] = {}
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = (value.filename, value.file.read())
                else:
                    params[key] = value
        for key, value in list(params.items()):
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    pass
        return params, files

    async def _handle_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params, files = await self._params(request)
        if method == "getUpdates":
            self.polls += 1
        else:
            self.calls.append(RecordedCall(method, params, files))
        if self._drops.get(method):
            self._drops[method] -= 1
            assert request.transport is not None
            request.transport.close()  # the client sees the server disconnect
            return web.Response()
        injected = self._errors.get(method)
        if injected:
            error = injected.pop(0)
            body: dict[str, Any] = {
                "ok": False,
                "error_code": error.error_code,
                "description": error.description,
            }
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
            return web.json_response(body, status=error.error_code)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None and method not in _ANSWERED_TRUE:
            return _error(404, "Not Found")
        try:
            result = await handler(params, files) if handler is not None else True
        except _ApiError as refused:
            return _error(refused.code, refused.description)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["path"].split("/")[-1]
        path = self._files.get(file_id)
        if path is None:
            return web.Response(status=404)
        self.file_downloads += 1
        await self._files_released.wait()
        return web.FileResponse(path)

    async def _api_getMe(self, params, files) -> Any:
        return BOT_USER

    async def _api_getUpdates(self, params, files) -> Any:
        offset = int(params.get("offset") or 0)
        if offset:  # like Telegram: an offset confirms (and forgets) every earlier update
            confirmed = [u for u in self._updates if u["update_id"] < offset]
            if confirmed and self.on_confirm is not None:
                self.on_confirm(confirmed)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        # Long polling, but bounded so a test never hangs on it.
        timeout = min(float(params.get("timeout") or 0), 0.5)
        pending = [u for u in self._updates if u["update_id"] >= offset]
        if not pending and timeout > 0:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout)
            except TimeoutError:
                pass
            pending = [u for u in self._updates if u["update_id"] >= offset]
        return pending[:100]

    async def _api_getFile(self, params, files) -> Any:
        file_id = params["file_id"]
        path = self._files.get(file_id)
        if path is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        size = path.stat().st_size
        if self.local_mode:
            file_path = str(path.resolve())
        elif size > self.download_limit:
            raise _ApiError(400, "Bad Request: file is too big")
        else:
            file_path = f"music/{file_id}"
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": size,
            "file_path": file_path,
        }

    def _sent_message(self, params, **content: Any) -> dict[str, Any]:
        sent = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(params["chat_id"]), "type": "private"},
            "from": BOT_USER,
            **content,
        }
        if isinstance(params.get("reply_markup"), dict):
            sent["reply_markup"] = params["reply_markup"]
        self._sent[id(self.calls[-1])] = sent
        return sent

    async def _api_answerCallbackQuery(self, params, files) -> Any:
        query_id = str(params.get("callback_query_id"))
        if query_id not in self._open_queries:
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._open_queries.discard(query_id)
        return True

    async def _api_sendMessage(self, params, files) -> Any:
        if len(params.get("text", "")) > MESSAGE_LIMIT:
            raise _ApiError(400, "Bad Request: message is too long")
        sent = self._sent_message(params, text=params.get("text", ""))
        self._texts[(str(params["chat_id"]), sent["message_id"])] = sent["text"]
        return sent

    async def _api_editMessageText(self, params, files) -> Any:
        key = (str(params.get("chat_id")), int(params.get("message_id") or 0))
        text = params.get("text", "")
        if key not in self._texts:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if self._texts[key] == text:
            raise _ApiError(400, NOT_MODIFIED)
        self._texts[key] = text
        return {**self._sent_message(params, text=text), "message_id": key[1]}

    def _check_upload(self, content: bytes) -> None:
        if len(content) > self.upload_limit:
            raise _ApiError(413, "Request Entity Too Large")

    async def _api_sendAudio(self, params, files) -> Any:
        name, content = files.get("audio", ("audio.mp3", b""))
        self._check_upload(content)
        return self._sent_message(
            params,
            audio={
                "file_id": f"sent-{len(self.calls)}",
                "file_unique_id": f"s{len(self.calls)}",
                "duration": 1,
                "file_name": name,
                "file_size": len(content),
            },
        )

    async def _api_sendVideo(self, params, files) -> Any:
        if "video" not in files and not params.get("video"):
            raise _ApiError(400, "Bad Request: there is no video in the request")
        name, content = files.get("video", ("video.mp4", b""))
        caption = params.get("caption") or ""
        if len(caption) > CAPTION_LIMIT:
            raise _ApiError(400, "Bad Request: message caption is too long")
        self._check_upload(content)
        video: dict[str, Any] = {
            "file_id": f"sent-{len(self.calls)}",
            "file_unique_id": f"s{len(self.calls)}",
            "width": int(params.get("width") or 0),
            "height": int(params.get("height") or 0),
            "duration": int(params.get("duration") or 0),
            "file_name": name,
            "mime_type": "video/mp4",
            "file_size": len(content),
        }
        return self._sent_message(params, video=video, **({"caption": caption} if caption else {}))

    async def _api_sendDocument(self, params, files) -> Any:
        name, content = files.get("document", ("file", b""))
        self._check_upload(content)
        return self._sent_message(
            params,
            document={
                "file_id": f"sent-{len(self.calls)}",
                "file_unique_id": f"s{len(self.calls)}",
                "file_name": name,
                "file_size": len(content),
            },
        )


class _ApiError(Exception):
    """Raised by a method handler: the Bot API refuses the call."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _error(code: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description}, status=code
    )
