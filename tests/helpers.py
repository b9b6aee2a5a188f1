"""Helpers the tests share: invites, and driving the engine as a person would."""

from datetime import timedelta

from sqlalchemy import select

from bot.channels.base import read_typed
from bot.messages import Incoming, Kind, Reply
from core.db import utcnow
from core.models import Community, Invite
from core.services import Services


async def make_invite(
    services: Services,
    code: str,
    *,
    language: str = "ne",
    name: str | None = "Sita",
    community: str = "dhading-gajuri-3",
) -> Invite:
    """Create an invite for the sample deployment's community."""
    async with services.db.session() as session:
        found = await session.scalar(select(Community).where(Community.code == community))
        assert found is not None
        invite = Invite(
            code=code,
            community_id=found.id,
            language=language,
            name=name,
            expires_at=utcnow() + timedelta(days=7),
        )
        session.add(invite)
    return invite


class Person:
    """Someone typing into the engine on the terminal channel, with what they were told."""

    def __init__(self, services: Services, address: str = "p1", channel: str = "terminal"):
        self.services = services
        self.address = address
        self.channel = channel
        self.replies: list[Reply] = []

    async def send(self, incoming: Incoming) -> list[Reply]:
        replies = await self.services.engine.handle(self.channel, self.address, incoming)
        self.replies.extend(replies)
        return replies

    async def say(self, text: str) -> list[Reply]:
        return await self.send(read_typed(text, client_language="ne"))

    async def tap(self, label_or_data: str) -> list[Reply]:
        """Tap the button of the last reply whose label contains, or data equals, the text."""
        for reply in reversed(self.replies):
            for button in reply.flat_buttons:
                if button.data == label_or_data or label_or_data in button.label:
                    return await self.send(Incoming(Kind.BUTTON, data=button.data))
        raise AssertionError(f"no button {label_or_data!r} in {self.last.text!r}")

    @property
    def last(self) -> Reply:
        return self.replies[-1]

    def texts(self) -> str:
        return "\n".join(filter(None, (f"{r.title or ''}\n{r.text}" for r in self.replies)))
