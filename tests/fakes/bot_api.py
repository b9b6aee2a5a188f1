"""A fake Telegram Bot API server that real aiogram 3 talks to over HTTP on 127.0.0.1.

In-process use (tests)::

    async with FakeBotApi() as api:
        bot = Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
        await bot.send_message(42, "hi")
        assert api.sent_texts(chat_id=42) == ["hi"]

Out-of-process use (benchmarks)::

    with FakeBotApi.spawn_process() as proc:   # runs `python -m tests.fakes.bot_api`
        ...point the bot at proc.base_url...
        proc.stats()   # -> {"sendMessage": 120, ...} from GET /_fake/stats

Wire format, as aiogram produces it: every method is a POST to ``/bot{token}/{method}``.
Without uploads the body is ``application/x-www-form-urlencoded``; with uploads it is
``multipart/form-data`` where the field holds ``attach://<random key>`` and the bytes are a
separate part named ``<random key>``. Every non-string value is JSON-encoded, so ``chat_id``
arrives as ``"42"``, booleans as ``"true"``, keyboards as JSON text, and text stays raw.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import logging
import math
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from aiohttp import web

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]

DEFAULT_TOKEN = "123456:TEST"
DEFAULT_BOT_USERNAME = "helpdesk_test_bot"

_HERE = Path(__file__).resolve().parent
FIXTURES_DIR = _HERE.parent / "fixtures" / "telegram"
PROJECT_ROOT = _HERE.parent.parent

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
# Real Bot API accepts 50 MB uploads; aiohttp's 1 MB default would reject voice notes.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

# fmt: off
# Only these fields are JSON-decoded: decoding everything would turn text "123" into 123.
JSON_FIELDS = frozenset({
    "allowed_updates", "caption_entities", "commands", "entities", "explanation_entities",
    "input_message_content", "link_preview_options", "media", "menu_button", "message_ids",
    "options", "permissions", "prices", "reaction", "reply_markup", "reply_parameters",
    "results", "rights", "scope", "shipping_options",
})
INT_FIELDS = frozenset({
    "cache_time", "chat_id", "duration", "from_chat_id", "height", "limit", "max_connections",
    "message_id", "message_thread_id", "offset", "reply_to_message_id", "timeout",
    "until_date", "user_id", "width",
})
BOOL_FIELDS = frozenset({
    "allow_paid_broadcast", "allow_sending_without_reply", "disable_content_type_detection",
    "disable_notification", "disable_web_page_preview", "drop_pending_updates", "has_spoiler",
    "is_personal", "protect_content", "show_alert", "show_caption_above_media",
    "supports_streaming",
})
FLOAT_FIELDS = frozenset({"latitude", "longitude"})
_INT_RE = re.compile(r"-?\d+")

# Methods that count as "sending a message" for Telegram's flood limits.
RATE_LIMITED_METHODS = frozenset({
    "copymessage", "forwardmessage", "sendanimation", "sendaudio", "sendcontact",
    "senddocument", "sendlocation", "sendmediagroup", "sendmessage", "sendphoto",
    "sendsticker", "sendvideo", "sendvoice",
})
# fmt: on

UNAUTHORIZED: JsonDict = {"ok": False, "error_code": 401, "description": "Unauthorized"}
METHOD_NOT_FOUND: JsonDict = {
    "ok": False,
    "error_code": 404,
    "description": "Not Found: method not found",
}
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


def load_error(name: str) -> JsonDict:
    """Load a recorded Bot API error body, e.g. ``load_error("blocked_by_user")``.

    Reads ``tests/fixtures/telegram/errors/<name>.json`` (located relative to this file).
    Raises FileNotFoundError for an unknown name.
    """
    return _load_json(FIXTURES_DIR / "errors" / f"{name}.json")


def load_update(name: str) -> JsonDict:
    """Load a recorded Update object, e.g. ``load_update("voice_note")``.

    Reads ``tests/fixtures/telegram/<name>.json`` (located relative to this file).
    Raises FileNotFoundError for an unknown name.
    """
    return _load_json(FIXTURES_DIR / f"{name}.json")


def _load_json(path: Path) -> JsonDict:
    data: JsonDict = json.loads(path.read_text(encoding="utf-8"))
    return data


def error_body(code: int, description: str, **parameters: Any) -> JsonDict:
    """Build a Bot API error body; ``parameters`` (e.g. retry_after=5) are added if given."""
    body: JsonDict = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


def too_many_requests(retry_after: int) -> JsonDict:
    """Build a 429 body shaped like ``errors/too_many_requests.json``."""
    return error_body(
        429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
    )


def decode_params(raw: dict[str, Any]) -> JsonDict:
    """Turn wire values (all strings when form-encoded) back into Python values.

    Only known fields are converted: structured ones (reply_markup, entities, commands, ...)
    are JSON-decoded, ids/limits become int, flags become bool. Anything else - notably
    ``text`` and ``caption`` - stays exactly as sent. Values that fail to convert are kept.
    """
    return {key: _decode_value(key, value) for key, value in raw.items()}


def _decode_value(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value

    if key in JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            return value

    if key in INT_FIELDS and _INT_RE.fullmatch(value):
        return int(value)

    if key in BOOL_FIELDS and value in ("true", "false"):
        return value == "true"

    if key in FLOAT_FIELDS:
        with contextlib.suppress(ValueError):
            return float(value)
    return value


@dataclass
class Call:
    """One request received by the fake.

    ``params`` are decoded (see ``decode_params``). ``files`` maps the parameter name
    (``"voice"``, not aiogram's random ``attach://`` key) to the uploaded bytes, and
    ``filenames`` to the uploaded file name. ``at`` is the Unix time of arrival,
    ``status`` the HTTP status answered, ``seq`` a counter that survives ``clear()``.
    """

    method: str
    params: JsonDict
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    filenames: dict[str, str] = field(default_factory=dict)
    status: int = 200
    seq: int = 0
    # True for a send held open by ``hang_send`` and never delivered.
    hung: bool = False

    def to_json(self) -> JsonDict:
        """Return a JSON-safe dict; uploads are reported by size, not content."""
        return {
            "seq": self.seq,
            "method": self.method,
            "params": self.params,
            "files": {name: len(data) for name, data in self.files.items()},
            "filenames": self.filenames,
            "at": self.at,
            "status": self.status,
            "hung": self.hung,
        }


@dataclass
class StoredFile:
    """A file the fake can serve through getFile and ``/file/bot{token}/{file_path}``."""

    file_id: str
    file_unique_id: str
    content: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None

    def to_file_object(self) -> JsonDict:
        """Return the Bot API ``File`` object."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.content),
            "file_path": self.file_path,
        }


@dataclass(frozen=True)
class RateLimits:
    """Flood limits enforced when ``enforce_limits=True``; each is (messages, window seconds).

    Telegram documents ~30 msg/s overall, 20 msg/min per group and "about one message per
    second" per chat; the per-chat rule is a 3-in-3s window because short bursts (answer
    plus keyboard) do go through on the real API.
    """

    overall: tuple[int, float] = (30, 1.0)
    per_group: tuple[int, float] = (20, 60.0)
    per_chat: tuple[int, float] = (3, 3.0)


@dataclass
class _FailRule:
    method: str
    body: JsonDict
    remaining: int
    chat_id: int | str | None


class BotApiError(Exception):
    """Raised by a method handler to answer with a Bot API error ``body``."""

    def __init__(self, body: JsonDict) -> None:
        super().__init__(body.get("description", ""))
        self.body = body


class _SlidingWindows:
    """Timestamps of accepted sends, kept per key, to answer "how long until allowed"."""

    def __init__(self) -> None:
        self._stamps: dict[Any, deque[float]] = {}

    def wait_time(self, key: Any, limit: int, window: float, now: float) -> float:
        stamps = self._stamps.setdefault(key, deque())
        while stamps and stamps[0] <= now - window:
            stamps.popleft()

        if len(stamps) < limit:
            return 0.0
        return stamps[0] + window - now

    def add(self, key: Any, now: float) -> None:
        self._stamps.setdefault(key, deque()).append(now)

    def clear(self) -> None:
        self._stamps.clear()


Handler = Callable[[Call], Awaitable[Any]]

_MEDIA_KINDS: dict[str, tuple[str, str, str]] = {
    # method -> (parameter / Message field, file_path folder + extension, mime type)
    "sendVoice": ("voice", "voice/file_{n}.oga", "audio/ogg"),
    "sendAudio": ("audio", "music/file_{n}.mp3", "audio/mpeg"),
    "sendPhoto": ("photo", "photos/file_{n}.jpg", "image/jpeg"),
    "sendDocument": ("document", "documents/file_{n}", "application/octet-stream"),
}


class FakeBotApi:
    """In-process fake Bot API server (aiohttp.web) bound to 127.0.0.1.

    Use ``async with FakeBotApi(...) as api`` (or ``await start()`` / ``await close()``)
    inside the event loop that runs the bot. ``enforce_limits`` turns on flood limits
    (see ``RateLimits``); ``time_scale`` shrinks their windows and ``retry_after`` values
    (0.1 makes a 60 s window last 6 s) for fast benchmarks. Controls such as
    ``push_update`` must be called from the server's event loop thread.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = DEFAULT_BOT_USERNAME,
        host: str = "127.0.0.1",
        port: int = 0,
        enforce_limits: bool = False,
        time_scale: float = 1.0,
        latency: float = 0.0,
        limits: RateLimits | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.token = token
        self.bot_username = bot_username
        self.host = host
        self.enforce_limits = enforce_limits
        self.time_scale = time_scale
        self.limits = limits or RateLimits()
        self._requested_port = port
        self._latency = latency
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = False
        self._reset_state()

    def _reset_state(self) -> None:
        self._calls: list[Call] = []
        self._next_seq = 0
        self._calls_event = asyncio.Event()
        self._updates: list[JsonDict] = []
        self._last_update_id = 0
        self._updates_event = asyncio.Event()
        self._fail_rules: list[_FailRule] = []
        self._files: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._message_ids: Counter[int | str] = Counter()
        self._messages: dict[tuple[int | str, int], JsonDict] = {}
        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self._chat_members: dict[tuple[int | str, int], str] = {}
        self._chat_errors: dict[int | str, JsonDict] = {}
        self._random_429: tuple[float, random.Random, int] | None = None
        self._sends = 0
        self._hang_at: set[int] = set()
        self._hang_from: int | None = None
        self._webhook_url = ""
        self._windows = _SlidingWindows()
        self._methods = self._method_table()

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening; afterwards ``base_url`` is valid. Raises OSError if bind fails."""
        # Events bind to the loop that first awaits them, so make them in the serving loop.
        self._calls_event = asyncio.Event()
        self._updates_event = asyncio.Event()
        self._closing = False

        self._runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port)
        await site.start()

        self._port = self._bound_port(self._runner)
        logger.debug("fake Bot API listening on %s", self.base_url)

    async def close(self) -> None:
        """Stop the server; pending long polls are answered with ``[]`` first."""
        self._closing = True
        self._wake_updates()

        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @staticmethod
    def _bound_port(runner: web.AppRunner) -> int:
        addresses = runner.addresses
        if not addresses:
            raise RuntimeError("fake Bot API did not bind any socket")
        port: int = addresses[0][1]
        return port

    @property
    def port(self) -> int:
        """TCP port the server listens on. Raises RuntimeError before ``start()``."""
        if self._port is None:
            raise RuntimeError("FakeBotApi is not started; use `async with FakeBotApi()`")
        return self._port

    @property
    def base_url(self) -> str:
        """Base URL for ``TelegramAPIServer.from_base``, e.g. ``http://127.0.0.1:8081``."""
        return f"http://{self.host}:{self.port}"

    @property
    def bot_id(self) -> int:
        """Numeric bot id: the part of the token before the colon."""
        return int(self.token.partition(":")[0])

    # ----------------------------------------------------------------- recorded calls

    @property
    def calls(self) -> list[Call]:
        """All recorded calls (authorized requests plus downloads), oldest first."""
        return list(self._calls)

    def calls_of(self, method: str) -> list[Call]:
        """Recorded calls of ``method`` (case-insensitive, e.g. "sendMessage")."""
        wanted = method.lower()
        return [call for call in self._calls if call.method.lower() == wanted]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """Texts of successful sendMessage calls in order, optionally for one chat only.

        Failed attempts (fail_next, 429) are left out so a retried message appears once.
        """
        return [
            str(call.params.get("text", ""))
            for call in self.calls_of("sendMessage")
            if call.status == 200 and (chat_id is None or call.params.get("chat_id") == chat_id)
        ]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until at least ``count`` calls of ``method`` were answered; return them all.

        Raises AssertionError after ``timeout`` seconds, listing what was received instead.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [call for call in self.calls_of(method) if call.status != 0]
            if len(found) >= count:
                return found

            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._describe_timeout(method, count, found, timeout))

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._calls_event.wait(), remaining)

    def _describe_timeout(self, method: str, count: int, found: list[Call], timeout: float) -> str:
        lines = [
            f"timed out after {timeout}s waiting for {count} {method} call(s); "
            f"got {len(found)}. All {len(self._calls)} recorded call(s):"
        ]
        lines += [
            f"  #{call.seq} {call.method} -> {call.status} {_short(call.params)}"
            for call in self._calls[-30:]
        ]
        return "\n".join(lines)

    def clear(self) -> None:
        """Forget recorded calls (queued updates, files and fail rules are kept)."""
        self._calls.clear()

    def stats(self) -> dict[str, int]:
        """Number of recorded calls per method name, as served by ``GET /_fake/stats``."""
        return dict(Counter(call.method for call in self._calls))

    def _record(
        self, method: str, params: JsonDict, files: dict[str, bytes], filenames: dict[str, str]
    ) -> Call:
        # status 0 marks "in flight" so wait_for() never returns an unanswered call.
        call = Call(
            method=method,
            params=params,
            files=files,
            filenames=filenames,
            status=0,
            seq=self._next_seq,
        )
        self._next_seq += 1
        self._calls.append(call)
        return call

    def _wake_calls(self) -> None:
        # Replacing the event wakes every current waiter without needing the loop's lock.
        event, self._calls_event = self._calls_event, asyncio.Event()
        event.set()

    # ----------------------------------------------------------------- test controls

    def push_update(self, update: JsonDict) -> JsonDict:
        """Queue an Update for getUpdates; assigns the next ``update_id`` if missing.

        Returns the queued update. A pushed update_id lower than one already queued is
        kept anyway, in push order, as the real server would never do that.
        """
        queued = dict(update)
        if "update_id" not in queued:
            queued["update_id"] = self._last_update_id + 1
        self._last_update_id = max(self._last_update_id, int(queued["update_id"]))

        self._updates.append(queued)
        self._wake_updates()
        return queued

    def _wake_updates(self) -> None:
        event, self._updates_event = self._updates_event, asyncio.Event()
        event.set()

    @property
    def pending_updates(self) -> list[JsonDict]:
        """Updates queued and not yet acknowledged by a getUpdates offset."""
        return list(self._updates)

    def add_file(
        self, file_id: str, content: bytes, file_path: str = "voice/file_1.oga"
    ) -> JsonDict:
        """Make ``file_id`` resolvable by getFile and downloadable at ``file_path``.

        Give each file its own ``file_path``: a second file on the same path replaces the
        first one's download. Returns the ``File`` object getFile will answer.
        """
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=f"uniq{next(self._file_counter)}",
            content=content,
            file_path=file_path,
        )
        self._files[file_id] = stored
        return stored.to_file_object()

    def fail_next(
        self,
        method: str,
        body: JsonDict,
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (only to ``chat_id`` if given) with
        ``body`` and HTTP status ``body["error_code"]``, e.g. ``load_error("blocked_by_user")``.

        Raises ValueError if ``body`` has no integer error_code or ``times`` < 1.
        """
        if not isinstance(body.get("error_code"), int):
            raise ValueError(f"error body needs an int error_code: {body!r}")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")

        rule = _FailRule(method.lower(), dict(body), times, chat_id)
        self._fail_rules.append(rule)

    def set_chat_member(self, chat_id: int | str, user_id: int, status: str) -> None:
        """Make getChatMember answer ``status`` (creator, administrator, member, left,
        kicked) for ``user_id`` in ``chat_id``; anyone not set is a plain member."""
        self._chat_members[(chat_id, user_id)] = status

    def answer_chats(self, table: dict[int | str, JsonDict | str | None]) -> None:
        """Answer every send to a chat of ``table`` with its error, until changed.

        Values are error bodies or the names of ``tests/fixtures/telegram/errors/``
        files (``"blocked_by_user"``, ``"group_upgraded"`` ...). A body of ``None``
        removes the chat from the table.
        """
        for chat_id, error in table.items():
            if error is None:
                self._chat_errors.pop(chat_id, None)
                continue
            self._chat_errors[chat_id] = load_error(error) if isinstance(error, str) else error

    def inject_429(self, rate: float, *, seed: int = 0, retry_after: int = 1) -> None:
        """Answer a share ``rate`` (0 to 1) of otherwise accepted sends with 429, at random
        from ``seed`` so a run can be repeated; 0 turns it off."""
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be within 0 and 1, got {rate}")
        self._random_429 = (rate, random.Random(seed), retry_after) if rate else None

    def hang_send(self, nth: int, *, every_later: bool = False) -> None:
        """Hold the ``nth`` send from now (1 = the next) open forever without delivering
        it, as a request in flight when the sender dies; with ``every_later`` also every
        send after it, so nothing more is delivered at all. ``hung_sends()`` lists them;
        ``stop_hanging()`` lets later sends through again."""
        if nth < 1:
            raise ValueError(f"nth must be >= 1, got {nth}")
        if every_later:
            self._hang_from = self._sends + nth
        else:
            self._hang_at.add(self._sends + nth)

    def stop_hanging(self) -> None:
        """Deliver sends from now on; those already held stay held until the server stops."""
        self._hang_at.clear()
        self._hang_from = None

    def hung_sends(self) -> list[Call]:
        """Sends held open by ``hang_send``."""
        return [call for call in self._calls if call.hung]

    def deliveries(self) -> JsonDict:
        """Delivered sends per chat and method, 429s answered, and sends held open.

        ``{"by_chat": {"42": {"sendMessage": 2}}, "rate_limited": 3, "hung": 0}``;
        chat ids are strings so the answer survives JSON.
        """
        by_chat: dict[str, Counter[str]] = {}
        for call in self._calls:
            if call.status == 200 and call.method.lower() in RATE_LIMITED_METHODS:
                chat = str(call.params.get("chat_id"))
                by_chat.setdefault(chat, Counter())[call.method] += 1
        return {
            "by_chat": {chat: dict(methods) for chat, methods in by_chat.items()},
            "rate_limited": sum(1 for call in self._calls if call.status == 429),
            "hung": len(self.hung_sends()),
        }

    def set_latency(self, seconds: float) -> None:
        """Delay every Bot API and file response by ``seconds`` (0 disables)."""
        self._latency = max(0.0, seconds)

    def _take_failure(self, call: Call) -> JsonDict | None:
        for rule in self._fail_rules:
            if rule.method != call.method.lower():
                continue
            if rule.chat_id is not None and call.params.get("chat_id") != rule.chat_id:
                continue

            rule.remaining -= 1
            if rule.remaining <= 0:
                self._fail_rules.remove(rule)
            return dict(rule.body)
        return None

    def _chat_error(self, call: Call) -> JsonDict | None:
        if call.method.lower() not in RATE_LIMITED_METHODS:
            return None
        error = self._chat_errors.get(call.params.get("chat_id"))  # type: ignore[arg-type]
        return dict(error) if error is not None else None

    def _injected_429(self, call: Call) -> JsonDict | None:
        if self._random_429 is None or call.method.lower() not in RATE_LIMITED_METHODS:
            return None
        rate, dice, retry_after = self._random_429
        return too_many_requests(retry_after) if dice.random() < rate else None

    def _should_hang(self, call: Call) -> bool:
        if call.method.lower() not in RATE_LIMITED_METHODS:
            return False
        self._sends += 1
        if self._hang_from is not None and self._sends >= self._hang_from:
            return True
        return self._sends in self._hang_at

    async def _hang(self, call: Call) -> None:
        self._hang_at.discard(self._sends)
        call.hung = True
        self._wake_calls()
        # Until the server closes: the request is neither answered nor delivered.
        await asyncio.Event().wait()

    # ----------------------------------------------------------------- rate limits

    def _check_limits(self, call: Call) -> JsonDict | None:
        """Return a 429 body if ``call`` breaks a flood limit, else record it and return None.

        Extension point for stricter limit rules; does nothing unless ``enforce_limits``.
        Only accepted sends count towards the windows, like on the real API.
        """
        if not self.enforce_limits or call.method.lower() not in RATE_LIMITED_METHODS:
            return None

        now = time.monotonic()
        chat = call.params.get("chat_id")
        rules = self._applicable_limits(chat)
        wait = max(
            self._windows.wait_time(key, limit, window * self.time_scale, now)
            for key, (limit, window) in rules
        )
        if wait > 0:
            # aiogram types retry_after as int, so round up and never answer 0.
            return too_many_requests(max(1, math.ceil(wait)))

        for key, _rule in rules:
            self._windows.add(key, now)
        return None

    def _applicable_limits(self, chat: Any) -> list[tuple[Any, tuple[int, float]]]:
        rules: list[tuple[Any, tuple[int, float]]] = [("overall", self.limits.overall)]
        if chat is None:
            return rules

        rules.append((("chat", chat), self.limits.per_chat))
        if _is_group_chat(chat):
            rules.append((("group", chat), self.limits.per_group))
        return rules

    # ----------------------------------------------------------------- HTTP layer

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        app.router.add_get("/_fake/stats", self._handle_stats)
        app.router.add_get("/_fake/calls", self._handle_calls)
        app.router.add_post("/_fake/clear", self._handle_clear)
        app.router.add_post("/_fake/updates", self._handle_push_update)
        app.router.add_post("/_fake/fail", self._handle_fail)
        app.router.add_post("/_fake/files", self._handle_add_file)
        app.router.add_post("/_fake/latency", self._handle_latency)
        app.router.add_post("/_fake/chat_errors", self._handle_chat_errors)
        app.router.add_post("/_fake/inject_429", self._handle_inject_429)
        app.router.add_post("/_fake/hang", self._handle_hang)
        app.router.add_get("/_fake/deliveries", self._handle_deliveries)
        return app

    async def _handle_method(self, request: web.Request) -> web.Response:
        await self._delay()
        if request.match_info["token"] != self.token:
            return web.json_response(UNAUTHORIZED, status=401)

        params, files, filenames = await _read_request(request)
        name = request.match_info["method"]
        canonical, handler = self._methods.get(name.lower(), (name, None))
        call = self._record(canonical, params, files, filenames)

        status, body = await self._dispatch(call, handler)
        call.status = status
        self._wake_calls()
        return web.json_response(body, status=status)

    async def _dispatch(self, call: Call, handler: Handler | None) -> tuple[int, JsonDict]:
        if (failure := self._take_failure(call)) is not None:
            return int(failure["error_code"]), failure
        if handler is None:
            return 404, dict(METHOD_NOT_FOUND)
        if (refused := self._chat_error(call)) is not None:
            return int(refused["error_code"]), refused
        if (limited := self._check_limits(call) or self._injected_429(call)) is not None:
            return 429, limited
        if self._should_hang(call):
            await self._hang(call)

        try:
            result = await handler(call)
        except BotApiError as exc:
            return int(exc.body["error_code"]), exc.body
        except Exception as exc:
            # A bug in the fake must surface in the test, not as a hung or opaque request.
            logger.exception("fake Bot API crashed on %s", call.method)
            return 500, error_body(500, f"Internal Server Error: fake crashed: {exc!r}")
        return 200, {"ok": True, "result": result}

    async def _handle_file(self, request: web.Request) -> web.Response:
        await self._delay()
        if request.match_info["token"] != self.token:
            return web.json_response(UNAUTHORIZED, status=401)

        file_path = request.match_info["file_path"]
        call = self._record("downloadFile", {"file_path": file_path}, {}, {})
        stored = self._file_by_path(file_path)
        call.status = 404 if stored is None else 200
        self._wake_calls()

        if stored is None:
            return web.json_response(error_body(404, "Not Found"), status=404)
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    def _file_by_path(self, file_path: str) -> StoredFile | None:
        # Newest wins so a re-added path serves the latest content.
        for stored in reversed(self._files.values()):
            if stored.file_path == file_path:
                return stored
        return None

    async def _delay(self) -> None:
        if self._latency > 0:
            await asyncio.sleep(self._latency)

    async def _handle_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _handle_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        since = int(request.query.get("since", "0"))
        selected = self.calls_of(method) if method else self.calls
        return web.json_response(
            {
                "calls": [call.to_json() for call in selected if call.seq >= since],
                "next": self._next_seq,
            }
        )

    async def _handle_clear(self, request: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"ok": True})

    async def _handle_push_update(self, request: web.Request) -> web.Response:
        return web.json_response(self.push_update(await request.json()))

    async def _handle_fail(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.fail_next(
            spec["method"], spec["body"], int(spec.get("times", 1)), spec.get("chat_id")
        )
        return web.json_response({"ok": True})

    async def _handle_add_file(self, request: web.Request) -> web.Response:
        spec = await request.json()
        content = base64.b64decode(spec["content_b64"])
        file_path = spec.get("file_path", "voice/file_1.oga")
        return web.json_response(self.add_file(spec["file_id"], content, file_path))

    async def _handle_latency(self, request: web.Request) -> web.Response:
        self.set_latency(float((await request.json())["seconds"]))
        return web.json_response({"ok": True})

    async def _handle_chat_errors(self, request: web.Request) -> web.Response:
        table = await request.json()
        self.answer_chats({_chat_key(chat): error for chat, error in table.items()})
        return web.json_response({"ok": True})

    async def _handle_inject_429(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.inject_429(
            float(spec["rate"]),
            seed=int(spec.get("seed", 0)),
            retry_after=int(spec.get("retry_after", 1)),
        )
        return web.json_response({"ok": True})

    async def _handle_hang(self, request: web.Request) -> web.Response:
        spec = await request.json()
        if spec.get("stop"):
            self.stop_hanging()
        else:
            self.hang_send(int(spec["nth"]), every_later=bool(spec.get("every_later")))
        return web.json_response({"ok": True})

    async def _handle_deliveries(self, request: web.Request) -> web.Response:
        return web.json_response(self.deliveries())

    # ----------------------------------------------------------------- Bot API methods

    def _method_table(self) -> dict[str, tuple[str, Handler]]:
        handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": _true,
            "sendChatAction": _true,
            "deleteMessage": _true,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getFile": self._get_file,
            "getUpdates": self._get_updates,
            "getChatMember": self._get_chat_member,
        }
        for method in _MEDIA_KINDS:
            handlers[method] = self._send_media
        # Telegram matches method names case-insensitively.
        return {name.lower(): (name, handler) for name, handler in handlers.items()}

    def _bot_user(self) -> JsonDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Helpdesk Test Bot",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_me(self, call: Call) -> JsonDict:
        return self._bot_user()

    async def _send_message(self, call: Call) -> JsonDict:
        chat_id = _require_chat_id(call)
        text = call.params.get("text")
        if not text:
            raise BotApiError(error_body(400, "Bad Request: message text is empty"))
        if len(text) > MAX_TEXT_LENGTH:
            raise BotApiError(load_error("message_too_long"))

        message = self._new_message(chat_id, call)
        message["text"] = text
        return message

    async def _edit_message_text(self, call: Call) -> JsonDict | bool:
        text = call.params.get("text")
        if not text:
            raise BotApiError(error_body(400, "Bad Request: message text is empty"))
        if len(text) > MAX_TEXT_LENGTH:
            raise BotApiError(load_error("message_too_long"))
        if call.params.get("inline_message_id"):
            return True

        message = self._message_to_edit(call)
        message["text"] = text
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        _set_markup(message, call.params.get("reply_markup"))
        return message

    async def _edit_message_reply_markup(self, call: Call) -> JsonDict | bool:
        if call.params.get("inline_message_id"):
            return True

        message = self._message_to_edit(call)
        _set_markup(message, call.params.get("reply_markup"))
        return message

    def _message_to_edit(self, call: Call) -> JsonDict:
        chat_id = _require_chat_id(call)
        message_id = call.params.get("message_id")
        if not isinstance(message_id, int):
            raise BotApiError(error_body(400, "Bad Request: message identifier is not specified"))

        # Unknown ids are accepted: tests often edit messages that came from fixtures.
        message = self._messages.setdefault(
            (chat_id, message_id), self._message_skeleton(chat_id, message_id)
        )
        message["edit_date"] = int(time.time())
        return message

    def _new_message(self, chat_id: int | str, call: Call) -> JsonDict:
        self._message_ids[chat_id] += 1
        message = self._message_skeleton(chat_id, self._message_ids[chat_id])
        _set_markup(message, call.params.get("reply_markup"))

        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _message_skeleton(self, chat_id: int | str, message_id: int) -> JsonDict:
        return {
            "message_id": message_id,
            "from": self._bot_user(),
            "chat": _chat_object(chat_id),
            "date": int(time.time()),
        }

    async def _send_media(self, call: Call) -> JsonDict:
        kind, path_template, mime_type = _MEDIA_KINDS[call.method]
        chat_id = _require_chat_id(call)
        caption = call.params.get("caption")
        if caption and len(caption) > MAX_CAPTION_LENGTH:
            raise BotApiError(load_error("caption_too_long"))

        stored = self._media_file(call, kind, path_template, mime_type)
        message = self._new_message(chat_id, call)
        message[kind] = _media_object(kind, stored, call.params)
        if caption:
            message["caption"] = caption
        return message

    def _media_file(self, call: Call, kind: str, path_template: str, mime_type: str) -> StoredFile:
        if kind in call.files:
            return self._store_upload(call, kind, path_template, mime_type)

        reference = call.params.get(kind)
        if not isinstance(reference, str) or not reference:
            raise BotApiError(error_body(400, f"Bad Request: there is no {kind} in the request"))

        # Unknown file_ids / URLs are accepted so tests can forward fixture file_ids.
        known = self._files.get(reference)
        return known or StoredFile(reference, f"uniq-{reference[-12:]}", b"", "")

    def _store_upload(
        self, call: Call, kind: str, path_template: str, mime_type: str
    ) -> StoredFile:
        n = next(self._file_counter)
        stored = StoredFile(
            file_id=f"fake-{kind}-{n}",
            file_unique_id=f"uniq{n}",
            content=call.files[kind],
            file_path=path_template.format(n=n),
            file_name=call.filenames.get(kind),
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        return stored

    async def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise BotApiError(error_body(400, "Bad Request: can't parse commands JSON object"))

        self._commands[_commands_key(call.params)] = commands
        return True

    async def _delete_my_commands(self, call: Call) -> bool:
        self._commands.pop(_commands_key(call.params), None)
        return True

    async def _get_my_commands(self, call: Call) -> list[JsonDict]:
        return self._commands.get(_commands_key(call.params), [])

    async def _get_chat_member(self, call: Call) -> JsonDict:
        chat_id = _require_chat_id(call)
        user_id = int(call.params.get("user_id", 0))
        status = self._chat_members.get((chat_id, user_id), "member")
        return _chat_member(user_id, status)

    async def _set_webhook(self, call: Call) -> bool:
        self._webhook_url = str(call.params.get("url", ""))
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _delete_webhook(self, call: Call) -> bool:
        self._webhook_url = ""
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, call: Call) -> JsonDict:
        return {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _get_file(self, call: Call) -> JsonDict:
        stored = self._files.get(str(call.params.get("file_id", "")))
        if stored is None:
            raise BotApiError(error_body(400, "Bad Request: invalid file_id"))
        return stored.to_file_object()

    async def _get_updates(self, call: Call) -> list[JsonDict]:
        if self._webhook_url:
            raise BotApiError(error_body(409, WEBHOOK_CONFLICT))
        offset = int(call.params.get("offset", 0))
        limit = min(max(int(call.params.get("limit", 100)), 1), 100)
        timeout = max(float(call.params.get("timeout", 0)), 0.0)

        self._acknowledge(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            pending = [u for u in self._updates if u["update_id"] >= offset][:limit]
            remaining = deadline - loop.time()
            if pending or self._closing or remaining <= 0:
                return pending

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updates_event.wait(), remaining)

    def _acknowledge(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            # Negative offset: keep only the last -offset updates, forget the rest.
            self._updates = self._updates[offset:]

    # ----------------------------------------------------------------- subprocess mode

    @classmethod
    def spawn_process(
        cls,
        token: str = DEFAULT_TOKEN,
        *,
        enforce_limits: bool = False,
        time_scale: float = 1.0,
        latency: float = 0.0,
        startup_timeout: float = 15.0,
    ) -> FakeBotApiProcess:
        """Start ``python -m tests.fakes.bot_api`` on a free port and wait until it listens.

        Returns a handle (also a context manager) that stops the process on close.
        Raises RuntimeError if the process dies or does not report ready in time.
        """
        return FakeBotApiProcess.start(
            token=token,
            enforce_limits=enforce_limits,
            time_scale=time_scale,
            latency=latency,
            startup_timeout=startup_timeout,
        )


async def _true(call: Call) -> bool:
    return True


def _require_chat_id(call: Call) -> int | str:
    chat_id = call.params.get("chat_id")
    if isinstance(chat_id, int) or (isinstance(chat_id, str) and chat_id.startswith("@")):
        return chat_id
    if chat_id in (None, ""):
        raise BotApiError(error_body(400, "Bad Request: chat_id is empty"))
    raise BotApiError(load_error("chat_not_found"))


def _chat_key(chat: str) -> int | str:
    """A chat id from a JSON object key, as decode_params would read it."""
    return int(chat) if _INT_RE.fullmatch(chat) else chat


def _is_group_chat(chat_id: Any) -> bool:
    return isinstance(chat_id, str) or (isinstance(chat_id, int) and chat_id < 0)


def _chat_object(chat_id: int | str) -> JsonDict:
    """Build a Chat: positive ids are private, -100... supergroups, other negatives groups."""
    if isinstance(chat_id, str):
        return {
            "id": -1001000000000,
            "type": "channel",
            "title": chat_id,
            "username": chat_id.lstrip("@"),
        }
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
    if str(chat_id).startswith("-100"):
        return {"id": chat_id, "type": "supergroup", "title": f"Supergroup {chat_id}"}
    return {"id": chat_id, "type": "group", "title": f"Group {chat_id}"}


def _chat_member(user_id: int, status: str) -> JsonDict:
    """A ChatMember as the Bot API shapes it; each status has its own required fields."""
    member: JsonDict = {
        "user": {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"},
        "status": status,
    }
    if status == "creator":
        member["is_anonymous"] = False
    if status == "administrator":
        rights = ("can_manage_chat", "can_delete_messages", "can_restrict_members")
        member.update({right: True for right in rights})
        member.update(
            dict.fromkeys(
                (
                    "can_be_edited",
                    "is_anonymous",
                    "can_manage_video_chats",
                    "can_promote_members",
                    "can_change_info",
                    "can_invite_users",
                    "can_post_stories",
                    "can_edit_stories",
                    "can_delete_stories",
                    "can_send_welcome_messages",
                ),
                False,
            )
        )
    if status == "kicked":
        member["until_date"] = 0
    return member


def _set_markup(message: JsonDict, markup: Any) -> None:
    # Message.reply_markup can only be an inline keyboard; reply keyboards are not echoed.
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


def _media_object(kind: str, stored: StoredFile, params: JsonDict) -> Any:
    base: JsonDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if stored.content:
        base["file_size"] = len(stored.content)

    if kind == "photo":
        width = int(params.get("width", 90))
        height = int(params.get("height", 90))
        return [{**base, "width": width, "height": height}]
    if stored.mime_type:
        base["mime_type"] = stored.mime_type
    if kind in ("voice", "audio"):
        base["duration"] = int(params.get("duration", 1))
    if kind in ("audio", "document") and stored.file_name:
        base["file_name"] = stored.file_name
    return base


def _commands_key(params: JsonDict) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(params.get("language_code", ""))


def _short(params: JsonDict, limit: int = 120) -> str:
    text = json.dumps(params, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def _read_request(
    request: web.Request,
) -> tuple[JsonDict, dict[str, bytes], dict[str, str]]:
    """Decode query string plus JSON, urlencoded or multipart body into (params, files,
    filenames); uploads referenced as ``attach://key`` are re-keyed by their parameter."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    filenames: dict[str, str] = {}

    if request.content_type == "application/json" and request.can_read_body:
        raw.update(await request.json())
    elif request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
                filenames[key] = value.filename
            else:
                raw[key] = value

    _resolve_attachments(raw, files, filenames)
    return decode_params(raw), files, filenames


def _resolve_attachments(
    raw: dict[str, Any], files: dict[str, bytes], filenames: dict[str, str]
) -> None:
    for key, value in raw.items():
        if not (isinstance(value, str) and value.startswith("attach://")):
            continue
        part = value.removeprefix("attach://")
        if part in files:
            files[key] = files.pop(part)
            filenames[key] = filenames.pop(part, key)


class FakeBotApiProcess:
    """Handle on a fake Bot API running in a child process (see ``spawn_process``).

    Control and inspection go over HTTP (``/_fake/...``) with blocking urllib calls, which
    is fine from async code since the server lives in another process. Use as a (sync or
    async) context manager, or call ``close()``.
    """

    def __init__(
        self, process: subprocess.Popen[str], port: int, token: str, stderr: IO[bytes]
    ) -> None:
        self.process = process
        self.port = port
        self.token = token
        self.base_url = f"http://127.0.0.1:{port}"
        self._stderr = stderr
        # Never route 127.0.0.1 through an HTTP(S)_PROXY from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @classmethod
    def start(
        cls,
        *,
        token: str,
        enforce_limits: bool,
        time_scale: float,
        latency: float,
        startup_timeout: float,
    ) -> FakeBotApiProcess:
        """Launch the child and block until it prints ``ready PORT``.

        Raises RuntimeError (with the child's stderr) if it exits or times out first.
        """
        command = [
            sys.executable,
            "-m",
            "tests.fakes.bot_api",
            "--port",
            "0",
            "--token",
            token,
            "--time-scale",
            str(time_scale),
            "--latency",
            str(latency),
        ]
        if enforce_limits:
            command.append("--enforce-limits")
        env = {**os.environ, "PYTHONPATH": _prepend_path(str(PROJECT_ROOT))}

        # The handle owns this file for the child's lifetime, so no `with` block here.
        stderr = tempfile.TemporaryFile()  # noqa: SIM115
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=stderr
        )
        try:
            port = _await_ready(process, startup_timeout)
        except RuntimeError as exc:
            _stop(process)
            stderr.seek(0)
            details = stderr.read().decode(errors="replace")
            stderr.close()
            raise RuntimeError(f"{exc}; stderr:\n{details}") from None
        return cls(process, port, token, stderr)

    def close(self) -> None:
        """Terminate the child (kill after 5 s) and release its pipes."""
        _stop(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def stats(self) -> dict[str, int]:
        """Calls per method so far (``GET /_fake/stats``)."""
        stats: dict[str, int] = self._request("GET", "/_fake/stats")
        return stats

    def calls(self, method: str | None = None, since: int = 0) -> JsonDict:
        """``{"calls": [...], "next": N}``; pass ``since=N`` next time to get only new calls."""
        query = {"since": str(since), **({"method": method} if method else {})}
        result: JsonDict = self._request("GET", "/_fake/calls?" + urllib.parse.urlencode(query))
        return result

    def clear(self) -> None:
        """Forget recorded calls in the child."""
        self._request("POST", "/_fake/clear", {})

    def push_update(self, update: JsonDict) -> JsonDict:
        """Queue an update for getUpdates; returns it with its update_id."""
        queued: JsonDict = self._request("POST", "/_fake/updates", update)
        return queued

    def fail_next(
        self, method: str, body: JsonDict, times: int = 1, chat_id: int | str | None = None
    ) -> None:
        """Same as ``FakeBotApi.fail_next`` in the child."""
        spec = {"method": method, "body": body, "times": times, "chat_id": chat_id}
        self._request("POST", "/_fake/fail", spec)

    def add_file(
        self, file_id: str, content: bytes, file_path: str = "voice/file_1.oga"
    ) -> JsonDict:
        """Same as ``FakeBotApi.add_file`` in the child; returns the File object."""
        spec = {
            "file_id": file_id,
            "file_path": file_path,
            "content_b64": base64.b64encode(content).decode(),
        }
        result: JsonDict = self._request("POST", "/_fake/files", spec)
        return result

    def set_latency(self, seconds: float) -> None:
        """Same as ``FakeBotApi.set_latency`` in the child."""
        self._request("POST", "/_fake/latency", {"seconds": seconds})

    def answer_chats(self, table: dict[int | str, JsonDict | str | None]) -> None:
        """Same as ``FakeBotApi.answer_chats`` in the child."""
        self._request("POST", "/_fake/chat_errors", {str(k): v for k, v in table.items()})

    def inject_429(self, rate: float, *, seed: int = 0, retry_after: int = 1) -> None:
        """Same as ``FakeBotApi.inject_429`` in the child."""
        spec = {"rate": rate, "seed": seed, "retry_after": retry_after}
        self._request("POST", "/_fake/inject_429", spec)

    def hang_send(self, nth: int, *, every_later: bool = False) -> None:
        """Same as ``FakeBotApi.hang_send`` in the child."""
        self._request("POST", "/_fake/hang", {"nth": nth, "every_later": every_later})

    def stop_hanging(self) -> None:
        """Same as ``FakeBotApi.stop_hanging`` in the child."""
        self._request("POST", "/_fake/hang", {"stop": True})

    def deliveries(self) -> JsonDict:
        """Same as ``FakeBotApi.deliveries`` in the child."""
        result: JsonDict = self._request("GET", "/_fake/deliveries")
        return result

    def _request(self, verb: str, path: str, payload: JsonDict | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=verb,
            headers={"Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=10) as response:
            return json.loads(response.read())


def _prepend_path(entry: str) -> str:
    current = os.environ.get("PYTHONPATH", "")
    return f"{entry}{os.pathsep}{current}" if current else entry


def _await_ready(process: subprocess.Popen[str], timeout: float) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if not readable:
            continue

        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"fake Bot API exited early (code {process.wait()})")
        if line.startswith("ready "):
            return int(line.split()[1])
    raise RuntimeError(f"fake Bot API not ready after {timeout}s")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------- standalone entry


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--bot-username", default=DEFAULT_BOT_USERNAME)
    parser.add_argument("--enforce-limits", action="store_true")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    api = FakeBotApi(
        args.token,
        bot_username=args.bot_username,
        host=args.host,
        port=args.port,
        enforce_limits=args.enforce_limits,
        time_scale=args.time_scale,
        latency=args.latency,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async with api:
        # The parent (spawn_process) parses exactly this line to learn the port.
        print(f"ready {api.port}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Run the fake until SIGTERM/SIGINT; prints ``ready PORT`` once listening."""
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
