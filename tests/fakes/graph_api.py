"""A fake of the parts of Meta's Graph API that the WhatsApp channel uses, as an httpx
mock transport: sending messages, uploading and downloading media.

Every request pywa makes is checked here: the host and API version, the bearer token,
the phone number id in the path, and the shape of a message body. Anything else fails
the test with the request in the message, so a new call cannot slip by unasserted.
"""

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

HOST = "graph.test"
BASE_URL = f"https://{HOST}"
TOKEN = "graph-token-for-tests"
PHONE_ID = "100000000000001"
MEDIA_HOST = "lookaside.graph.test"
MESSAGE_TYPES = frozenset({"text", "interactive", "template", "audio"})


@dataclass
class Request:
    """One request pywa made, decoded."""

    method: str
    path: str
    body: dict[str, Any]

    @property
    def to(self) -> str:
        return str(self.body.get("to", ""))

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))


@dataclass
class FakeGraphApi:
    """The fake; ``transport`` goes to the app, ``requests`` holds what was asked."""

    requests: list[Request] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    errors: list[tuple[int, int, str]] = field(default_factory=list)
    _ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def fail_next(self, code: int, message: str, http_status: int = 400) -> None:
        """Answer the next message send with a Cloud API error."""
        self.errors.append((http_status, code, message))

    def messages(self, to: str | None = None) -> list[Request]:
        """Message sends, to one number or all."""
        sent = [r for r in self.requests if r.path == f"/{PHONE_ID}/messages"]
        return [r for r in sent if to is None or r.to == to]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == MEDIA_HOST:
            return self._download(request)
        assert request.url.host == HOST, f"request outside the configured base: {request.url}"
        assert request.headers.get("authorization") == f"Bearer {TOKEN}", request.headers
        version, _, path = request.url.path.lstrip("/").partition("/")
        assert version.startswith("v"), f"no API version in {request.url}"

        if request.method == "POST" and path == f"{PHONE_ID}/messages":
            return self._message(request)
        if request.method == "POST" and path == f"{PHONE_ID}/media":
            self.requests.append(Request("POST", f"/{PHONE_ID}/media", {}))
            assert b'name="file"' in request.content and b"audio/ogg" in request.content
            return httpx.Response(200, json={"id": f"media-up-{next(self._ids)}"})
        if request.method == "GET" and path in self.media:
            self.requests.append(Request("GET", f"/{path}", {}))
            content, mime = self.media[path]
            return httpx.Response(
                200,
                json={
                    "messaging_product": "whatsapp",
                    "id": path,
                    "url": f"https://{MEDIA_HOST}/{path}",
                    "mime_type": mime,
                    "sha256": "0" * 64,
                    "file_size": len(content),
                },
            )
        raise AssertionError(f"unexpected Graph API request {request.method} {request.url}")

    def _message(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(Request("POST", f"/{PHONE_ID}/messages", body))
        assert body["messaging_product"] == "whatsapp" and body["to"], body
        assert body["type"] in MESSAGE_TYPES, body
        if self.errors:
            status, code, message = self.errors.pop(0)
            error = {"message": message, "type": "OAuthException", "code": code}
            return httpx.Response(status, json={"error": error})
        wamid = f"wamid.OUT{next(self._ids):06d}"
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            },
        )

    def _download(self, request: httpx.Request) -> httpx.Response:
        media_id = request.url.path.lstrip("/")
        assert request.headers.get("authorization") == f"Bearer {TOKEN}", "media needs the token"
        self.requests.append(Request("GET", f"media:{media_id}", {}))
        content, mime = self.media[media_id]
        return httpx.Response(200, content=content, headers={"Content-Type": mime})


def text_of(request: Request) -> str:
    """What the person reads in a sent message: the text, or an interactive body."""
    if request.type == "text":
        return str(request.body["text"]["body"])
    if request.type == "interactive":
        return str(request.body["interactive"]["body"]["text"])
    return ""


def choices_of(request: Request) -> list[tuple[str, str]]:
    """(id, title) of the buttons or list rows of an interactive message."""
    if request.type != "interactive":
        return []
    action = request.body["interactive"]["action"]
    if "buttons" in action:
        return [(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]
    return [(r["id"], r["title"]) for s in action["sections"] for r in s["rows"]]
