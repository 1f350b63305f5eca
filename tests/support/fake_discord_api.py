"""A fake Discord REST API and CDN that a real discord.py client talks to.

discord.py sends every REST call through one aiohttp session built on the client's
``connector``: its own HTTP client's calls (login, command sync, channel messages) and the
interaction webhooks' (defer, edit the original response, followups). A client given an
``aiohttp.UnixConnector`` to this server's socket therefore reaches it for every
``https://discord.com/api/v10/...`` URL, without TLS or DNS, while discord.py's real
request code runs: JSON and multipart bodies, status codes mapped to ``HTTPException``.
Attachment URLs on ``cdn.discordapp.com`` reach the same server, which serves songs from
disk. Every call is recorded, with the names and bytes of uploaded files. Uploads over
the channel's limit (a server's boost tier's, 10 MiB in DMs, an interaction's
``attachment_size_limit`` for its followups) are refused as Discord refuses them: 413,
code 40005 "Request entity too large". Messages the bot sent can be fetched back
(``GET .../messages/{id}``), as discord.py does for a reply whose message it lacks.

There is no gateway: :class:`FakeGatewayClient` replaces ``connect`` with a session that
sends READY and the servers, and tests dispatch messages and interactions through the
client's connection state as the gateway would. Payloads follow Discord's API reference.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord
from aiohttp import web

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAx.fake.discord-token-never-logged"
APP_ID = 1100000000000000001
BOT_USER = {
    "id": str(APP_ID),
    "username": "karaoke",
    "discriminator": "0",
    "global_name": "Karaoke",
    "avatar": None,
    "bot": True,
}
_JOINED = "2024-01-01T00:00:00+00:00"


@dataclass
class ApiCall:
    """One REST call as the fake API received it."""

    kind: str
    """login, application, sync, respond, edit_original, followup, send, edit, fetch,
    download."""
    method: str
    path: str
    payload: dict[str, Any] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    channel_id: int | None = None
    interaction_token: str | None = None
    status: int = 200
    at: float = field(default_factory=time.monotonic)
    message: dict[str, Any] | None = None
    """The message object answered (sends and followups): what a test presses buttons of."""

    @property
    def text(self) -> str | None:
        data = self.payload.get("data", self.payload) if self.kind == "respond" else self.payload
        return data.get("content") if isinstance(data, dict) else None

    @property
    def file_names(self) -> list[str]:
        return [name for name, _ in self.files]


@dataclass
class _Interaction:
    id: int
    channel_id: int
    created: float
    size_limit: int = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


_TIER_UPLOAD_LIMITS = {0: 10 * 2**20, 1: 10 * 2**20, 2: 50 * 2**20, 3: 100 * 2**20}
"""Bytes one message may upload in a server of each boost tier (discord.py's
``Guild.filesize_limit``)."""
TOO_LARGE = (413, {"code": 40005, "message": "Request entity too large"})


class FakeDiscordApi:
    """Start with ``await api.start()``; clients get ``api.connector()``."""

    def __init__(self, *, token_lifetime: float = 900.0) -> None:
        self.calls: list[ApiCall] = []
        self.guilds: list[dict[str, Any]] = []
        self.token = TOKEN
        self.token_lifetime = token_lifetime
        """Seconds an interaction token is accepted, like Discord's 15 minutes."""
        self.refuse_message_content = False
        """Close the gateway with 4014 when a client asks for the message-content intent."""
        self.gateway_sessions = 0
        self._ids = itertools.count(1)
        self._files: dict[str, Path] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._upload_limits: dict[int, int] = {}
        self._sent: dict[tuple[int, int], dict[str, Any]] = {}
        self._errors: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._runner: web.AppRunner | None = None
        self._folder: Path | None = None
        self.socket_path = ""

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="fakediscord-"))
        self.socket_path = str(self._folder / "api.sock")  # short: AF_UNIX paths are limited
        app = web.Application(client_max_size=200 * 2**20)
        api = "/api/v10"
        routes = [
            ("GET", f"{api}/users/@me", self._login),
            ("GET", f"{api}/oauth2/applications/@me", self._application),
            ("PUT", f"{api}/applications/{{app}}/commands", self._sync),
            ("PUT", f"{api}/applications/{{app}}/guilds/{{guild}}/commands", self._sync),
            ("POST", f"{api}/interactions/{{id}}/{{token}}/callback", self._respond),
            ("PATCH", f"{api}/webhooks/{{app}}/{{token}}/messages/@original", self._edit_original),
            ("POST", f"{api}/webhooks/{{app}}/{{token}}", self._followup),
            ("POST", f"{api}/channels/{{channel}}/messages", self._send),
            ("PATCH", f"{api}/channels/{{channel}}/messages/{{message}}", self._edit),
            ("GET", f"{api}/channels/{{channel}}/messages/{{message}}", self._fetch),
            ("GET", "/attachments/{channel}/{attachment}/{name}", self._download),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.UnixSite(self._runner, self.socket_path).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def connector(self) -> aiohttp.BaseConnector:
        """A connector that sends every request, whatever its URL, to this server."""
        return aiohttp.UnixConnector(path=self.socket_path)

    # -- test controls ------------------------------------------------------------------
    def fail_next(self, kind: str, status: int, code: int, message: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``kind`` with a Discord error body."""
        error = (status, {"code": code, "message": message})
        self._errors.setdefault(kind, []).extend([error] * times)

    def rate_limit_next(self, kind: str, retry_after: float) -> None:
        """Answer the next call of ``kind`` with a 429, as Discord's rate limiter does."""
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        self._errors.setdefault(kind, []).append((429, {**body, "global": False}))

    def expire(self, token: str) -> None:
        """Refuse ``token`` from now on (401 Invalid Webhook Token), whatever its age."""
        self._interactions[token].created = float("-inf")

    def calls_to(self, *kinds: str) -> list[ApiCall]:
        return [call for call in self.calls if call.kind in kinds]

    def texts(self, channel_id: int, *, since: int = 0) -> list[str]:
        """Every text the bot showed in ``channel_id`` (sent, edited or responded), in order;
        with ``since``, only those of ``calls[since:]``."""
        return [
            call.text
            for call in self.calls[since:]
            if call.channel_id == channel_id and call.text is not None and call.status < 300
        ]

    def interaction_texts(self, token: str) -> list[str]:
        return [
            call.text
            for call in self.calls
            if call.interaction_token == token and call.text is not None and call.status < 300
        ]

    def uploads(self, channel_id: int) -> list[ApiCall]:
        """Delivered messages with files in ``channel_id``, in order."""
        return [c for c in self.calls if c.channel_id == channel_id and c.files and c.status < 300]

    async def wait_for(self, predicate: Callable[[FakeDiscordApi], Any], within: float = 30.0):
        deadline = time.monotonic() + within
        while not predicate(self):
            if time.monotonic() > deadline:
                recent = [(c.kind, c.status, c.text) for c in self.calls[-8:]]
                raise AssertionError(f"timed out waiting; last calls: {recent}")
            await asyncio.sleep(0.05)

    # -- payload builders (Discord API reference shapes) --------------------------------
    def snowflake(self) -> int:
        """An id whose timestamp is now, like Discord's."""
        return discord.utils.time_snowflake(datetime.now(UTC)) + next(self._ids)

    @staticmethod
    def user(user_id: int, name: str = "ann") -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name.capitalize(),
            "avatar": None,
        }

    @staticmethod
    def member(roles: list[int] | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "roles": [str(role) for role in roles or []],
            "joined_at": _JOINED,
            "deaf": False,
            "mute": False,
            "flags": 0,
            **extra,
        }

    def add_guild(
        self,
        guild_id: int,
        *,
        channel_ids: list[int],
        premium_tier: int = 0,
        role_ids: list[int] | None = None,
    ) -> dict[str, Any]:
        """A server the bot is in; sent as GUILD_CREATE when a client connects."""
        roles = [
            {
                "id": str(role_id),
                "name": f"role-{role_id}",
                "color": 0,
                "hoist": False,
                "position": index,
                "permissions": "0",
                "managed": False,
                "mentionable": False,
            }
            for index, role_id in enumerate([guild_id, *(role_ids or [])])
        ]  # the @everyone role has the server's id
        channels = [
            {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(guild_id),
                "name": f"channel-{index}",
                "position": index,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            }
            for index, channel_id in enumerate(channel_ids)
        ]
        guild = {
            "id": str(guild_id),
            "name": f"Server {guild_id}",
            "icon": None,
            "owner_id": "1",
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": roles,
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "premium_tier": premium_tier,
            "preferred_locale": "en-US",
            "channels": channels,
            "threads": [],
            "members": [],
            "member_count": 2,
            "large": False,
            "unavailable": False,
        }
        self.guilds.append(guild)
        for channel_id in channel_ids:
            self._upload_limits[channel_id] = _TIER_UPLOAD_LIMITS[premium_tier]
        return guild

    def attachment(
        self,
        path: Path,
        *,
        channel_id: int,
        filename: str | None = None,
        content_type: str | None = "audio/mpeg",
        declared_size: int | None = None,
    ) -> dict[str, Any]:
        """An attachment whose CDN URL serves ``path``."""
        attachment_id = self.snowflake()
        name = filename or path.name
        self._files[str(attachment_id)] = path
        url = f"https://cdn.discordapp.com/attachments/{channel_id}/{attachment_id}/{name}"
        payload: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": name,
            "size": declared_size if declared_size is not None else path.stat().st_size,
            "url": url,
            "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
        }
        if content_type is not None:
            payload["content_type"] = content_type
        return payload

    def message(
        self,
        *,
        channel_id: int,
        author_id: int,
        guild_id: int | None,
        content: str = "",
        attachments: list[dict[str, Any]] | None = None,
        mention_bot: bool = False,
        roles: list[int] | None = None,
        reply_to: dict[str, Any] | None = None,
        send_replied: bool = True,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE event's payload; a reply carries the message it replies to
        unless ``send_replied`` is False (Discord may leave it out: then it is fetched)."""
        message: dict[str, Any] = {
            "id": str(self.snowflake()),
            "channel_id": str(channel_id),
            "author": self.user(author_id),
            "content": (f"<@{APP_ID}> " + content) if mention_bot else content,
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [BOT_USER] if mention_bot else [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "pinned": False,
            "type": 19 if reply_to else 0,
            "flags": 0,
            "components": [],
        }
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
            message["member"] = self.member(roles)
        if reply_to is not None:
            message["message_reference"] = {
                "type": 0,
                "message_id": reply_to["id"],
                "channel_id": reply_to["channel_id"],
            }
            if send_replied:
                message["referenced_message"] = reply_to
        return message

    def interaction(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        user_id: int,
        channel_id: int,
        guild_id: int | None,
        roles: list[int] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        size_limit: int = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a slash command; its token becomes valid."""
        interaction_id = self.snowflake()
        token = f"interaction-token-{interaction_id}"
        self._interactions[token] = _Interaction(
            interaction_id, channel_id, time.monotonic(), size_limit
        )
        data: dict[str, Any] = {
            "id": str(self.snowflake()),
            "name": name,
            "type": 1,
            "options": options or [],
        }
        if attachments:
            data["resolved"] = {"attachments": {a["id"]: a for a in attachments}}
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(APP_ID),
            "type": 2,
            "token": token,
            "version": 1,
            "data": data,
            "channel_id": str(channel_id),
            "app_permissions": "2147483647",
            "locale": "en-US",
            "attachment_size_limit": size_limit,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id or 0)},
            "context": 0 if guild_id else 1,
        }
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-US"
            payload["channel"] = {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(guild_id),
                "name": "songs",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            }
            payload["member"] = self.member(
                roles, user=self.user(user_id), permissions="2147483647"
            )
        else:
            payload["channel"] = {
                "id": str(channel_id),
                "type": 1,
                "recipients": [self.user(user_id)],
            }
            payload["user"] = self.user(user_id)
        return payload

    def press(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        user_id: int,
        channel_id: int,
        guild_id: int | None,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a button press (type 3, a message component)
        under ``message`` (one the bot sent); its token becomes valid."""
        payload = self.interaction("", user_id=user_id, channel_id=channel_id, guild_id=guild_id)
        payload.update(type=3, data={"custom_id": custom_id, "component_type": 2}, message=message)
        return payload

    def bot_message(
        self, channel_id: int, *, custom_ids: list[str], author: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A message with buttons of ``custom_ids`` that the bot sent earlier (or, with
        ``author``, that someone else did): what a user replies to; it can be fetched."""
        buttons = [
            {"type": 2, "style": 2, "label": "Faster", "custom_id": custom_id}
            for custom_id in custom_ids
        ]
        components = [{"type": 1, "components": buttons}] if buttons else []
        message = self._sent_message(channel_id, {"components": components}, [])
        if author is not None:
            message["author"] = author
        self._sent[(channel_id, int(message["id"]))] = message
        return message

    def _sent_message(
        self, channel_id: int, payload: dict[str, Any], files: list[tuple[str, bytes]]
    ) -> dict[str, Any]:
        attachments = [
            {
                "id": str(self.snowflake()),
                "filename": name,
                "size": len(content),
                "url": f"https://cdn.discordapp.com/attachments/{channel_id}/0/{name}",
                "proxy_url": f"https://media.discordapp.net/attachments/{channel_id}/0/{name}",
            }
            for name, content in files
        ]
        return {
            "id": str(self.snowflake()),
            "channel_id": str(channel_id),
            "author": BOT_USER,
            "content": payload.get("content") or "",
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": int(payload.get("flags") or 0),
            "components": payload.get("components") or [],
        }

    # -- gateway ------------------------------------------------------------------------
    async def gateway_session(self, client: FakeGatewayClient) -> None:
        """What connecting to the gateway does, minus the websocket: READY, then servers."""
        self.gateway_sessions += 1
        if client.intents.message_content and self.refuse_message_content:
            raise discord.PrivilegedIntentsRequired(None)
        state = client._connection
        state.parse_ready(
            {
                "v": 10,
                "user": BOT_USER,
                "guilds": [{"id": guild["id"], "unavailable": True} for guild in self.guilds],
                "session_id": "fake-session",
                "resume_gateway_url": "wss://gateway.discord.gg",
                "application": {"id": str(APP_ID), "flags": 0},
                "private_channels": [],
                "relationships": [],
            }
        )
        for guild in self.guilds:
            state.parse_guild_create(json.loads(json.dumps(guild)))
        await client.closed.wait()

    # -- REST handlers ------------------------------------------------------------------
    async def _record(
        self,
        request: web.Request,
        kind: str,
        *,
        channel_id: int | None = None,
        token: str | None = None,
    ) -> tuple[ApiCall, web.Response | None]:
        """Parse and record the call; returns an error response to send instead, if any."""
        payload: dict[str, Any] = {}
        files: list[tuple[str, bytes]] = []
        if request.content_type == "application/json":
            body = await request.json()
            payload = body if isinstance(body, dict) else {"commands": body}
        elif request.content_type.startswith("multipart/"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files.append((value.filename, value.file.read()))
                elif key == "payload_json":
                    payload = json.loads(value)
        call = ApiCall(
            kind,
            request.method,
            request.path,
            payload,
            files,
            channel_id=channel_id,
            interaction_token=token,
        )
        self.calls.append(call)
        error: tuple[int, dict[str, Any]] | None = None
        if kind not in ("download",) and request.headers.get("Authorization") not in (
            None,
            f"Bot {self.token}",
        ):
            error = (401, {"code": 0, "message": "401: Unauthorized"})
        elif token is not None and not self._token_valid(token):
            error = (401, {"code": 50027, "message": "Invalid Webhook Token"})
        elif self._errors.get(kind):
            error = self._errors[kind].pop(0)
        elif sum(len(content) for _, content in files) > self._upload_limit(channel_id, token):
            error = TOO_LARGE
        if error is None:
            return call, None
        call.status = error[0]
        # A real 429 comes through Discord's proxy ("Via"); without it discord.py assumes a
        # Cloudflare ban and does not retry.
        headers = {"Via": "1.1 google"} if error[0] == 429 else {}
        return call, _json(error[1], status=error[0], headers=headers)

    def _upload_limit(self, channel_id: int | None, token: str | None) -> int:
        """What one message may upload: the interaction's limit for its webhooks, else the
        channel's server's (10 MiB in DMs and unknown channels)."""
        if token is not None and (interaction := self._interactions.get(token)) is not None:
            return interaction.size_limit
        default = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        return self._upload_limits.get(channel_id or 0, default)

    def _token_valid(self, token: str) -> bool:
        interaction = self._interactions.get(token)
        return (
            interaction is not None and time.monotonic() - interaction.created < self.token_lifetime
        )

    def _interaction_channel(self, token: str) -> int | None:
        interaction = self._interactions.get(token)
        return interaction.channel_id if interaction else None

    async def _login(self, request: web.Request) -> web.Response:
        _, error = await self._record(request, "login")
        return error or _json(BOT_USER)

    async def _application(self, request: web.Request) -> web.Response:
        _, error = await self._record(request, "application")
        return error or _json(
            {
                "id": str(APP_ID),
                "name": "Karaoke",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.user(1, "owner"),
                "verify_key": "0" * 64,
                "flags": 0,
                "bot": BOT_USER,
            }
        )

    async def _sync(self, request: web.Request) -> web.Response:
        call, error = await self._record(request, "sync")
        if error:
            return error
        commands = call.payload["commands"]
        return _json(
            [
                {
                    **command,
                    "id": str(self.snowflake()),
                    "application_id": str(APP_ID),
                    "version": "1",
                    "default_member_permissions": None,
                    **(
                        {"guild_id": request.match_info["guild"]}
                        if "guild" in request.match_info
                        else {}
                    ),
                }
                for command in commands
            ]
        )

    async def _respond(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        channel = self._interaction_channel(token)
        call, error = await self._record(request, "respond", channel_id=channel, token=token)
        if error:
            return error
        interaction = self._interactions[token]
        message = self._sent_message(channel or 0, call.payload.get("data") or {}, [])
        return _json(
            {
                "interaction": {
                    "id": str(interaction.id),
                    "type": 2,
                    "response_message_id": message["id"],
                    "response_message_loading": call.payload.get("type") == 5,
                    "response_message_ephemeral": bool(
                        (call.payload.get("data") or {}).get("flags", 0) & 64
                    ),
                },
                "resource": {"type": call.payload.get("type"), "message": message}
                if call.payload.get("type") == 4
                else {"type": call.payload.get("type")},
            }
        )

    async def _edit_original(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        channel = self._interaction_channel(token)
        call, error = await self._record(request, "edit_original", channel_id=channel, token=token)
        return error or _json(self._sent_message(channel or 0, call.payload, call.files))

    async def _followup(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        channel = self._interaction_channel(token)
        call, error = await self._record(request, "followup", channel_id=channel, token=token)
        if error:
            return error
        call.message = self._sent_message(channel or 0, call.payload, call.files)
        self._sent[(channel or 0, int(call.message["id"]))] = call.message
        return _json(call.message)

    async def _send(self, request: web.Request) -> web.Response:
        channel = int(request.match_info["channel"])
        call, error = await self._record(request, "send", channel_id=channel)
        if error:
            return error
        call.message = self._sent_message(channel, call.payload, call.files)
        self._sent[(channel, int(call.message["id"]))] = call.message
        return _json(call.message)

    async def _edit(self, request: web.Request) -> web.Response:
        channel = int(request.match_info["channel"])
        call, error = await self._record(request, "edit", channel_id=channel)
        if error:
            return error
        message = self._sent_message(channel, call.payload, call.files)
        message["id"] = request.match_info["message"]
        return _json(message)

    async def _fetch(self, request: web.Request) -> web.Response:
        channel = int(request.match_info["channel"])
        _, error = await self._record(request, "fetch", channel_id=channel)
        message = self._sent.get((channel, int(request.match_info["message"])))
        if error:
            return error
        if message is None:
            return _json({"code": 10008, "message": "Unknown Message"}, status=404)
        return _json(message)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        _, error = await self._record(
            request, "download", channel_id=int(request.match_info["channel"])
        )
        path = self._files.get(request.match_info["attachment"])
        if error:
            return error
        if path is None:
            return web.Response(status=404)
        return web.FileResponse(path)

    async def _unknown(self, request: web.Request) -> web.Response:
        await self._record(request, f"unknown {request.method} {request.path}")
        return _json({"code": 0, "message": "404: Not Found"}, status=404)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses JSON only for exactly "application/json" (no charset), as Discord sends.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class FakeGatewayClient(discord.Client):
    """A real ``discord.Client`` whose REST calls reach the fake API and whose gateway
    session is :meth:`FakeDiscordApi.gateway_session` (tests dispatch the events)."""

    def __init__(self, api: FakeDiscordApi, *, intents: discord.Intents) -> None:
        super().__init__(
            intents=intents,
            connector=api.connector(),
            guild_ready_timeout=0.05,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.api = api
        self.closed = asyncio.Event()

    async def connect(self, *, reconnect: bool = True) -> None:
        await self.api.gateway_session(self)

    async def close(self) -> None:
        self.closed.set()
        await super().close()
