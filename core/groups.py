"""Community groups and channels that receive bulletins: they register themselves by
adding the bot, staff approve or reject them, and a group's admins may opt it out.

The lifecycle is drawn on :class:`core.models.Recipient`. Every function takes the
caller's session and never commits, so a channel can change a recipient and close its
update in the intake ledger in one transaction.
"""

import logging
import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import HelpdeskError
from core.models import Community, Recipient, Station

logger = logging.getLogger(__name__)

KINDS = ("group", "supergroup", "channel")
STATUSES = ("pending", "approved", "rejected", "opted_out", "inactive")


class GroupError(HelpdeskError):
    """A recipient that was asked for does not exist, or cannot make that change."""


async def find(session: AsyncSession, channel: str, address: str) -> Recipient | None:
    """The recipient that is ``address`` (a chat id as text) on ``channel``, if known."""
    return await session.scalar(
        select(Recipient).where(Recipient.channel == channel, Recipient.address == address)
    )


async def get(session: AsyncSession, recipient_id: int) -> Recipient:
    """The recipient with that id.

    Raises:
        GroupError: no such recipient.
    """
    recipient = await session.get(Recipient, recipient_id)
    if recipient is None:
        raise GroupError(f"no group {recipient_id} (see helpdesk group list)")
    return recipient


async def register(
    session: AsyncSession, channel: str, address: str, kind: str, title: str
) -> Recipient:
    """Record a chat the bot was added to, for staff to approve.

    A new chat is pending. One the bot had left (inactive) is pending again, since its
    members may have changed; a rejected one stays rejected. Any other keeps its status,
    so promoting the bot to admin in an approved group changes nothing. The title is
    always brought up to date.

    Raises:
        GroupError: ``kind`` is not a group, supergroup or channel.
    """
    if kind not in KINDS:
        raise GroupError(f"chat {channel}:{address} is a {kind}, not one of {', '.join(KINDS)}")

    recipient = await find(session, channel, address)
    if recipient is None:
        recipient = Recipient(
            channel=channel, address=address, kind=kind, title=title[:200], status="pending"
        )
        session.add(recipient)
        await session.flush()
        logger.info("group %s (%s:%s) registered, pending", recipient.id, channel, address)
        return recipient

    recipient.kind, recipient.title = kind, title[:200]
    if recipient.status == "inactive":
        _set_status(recipient, "pending", None)
    logger.info(
        "group %s (%s:%s) added again, %s", recipient.id, channel, address, recipient.status
    )
    return recipient


async def register_number(session: AsyncSession, number: str, title: str) -> Recipient:
    """Record a WhatsApp number whose owner agreed to receive bulletins (pending, to be
    approved like a group). WhatsApp has no bot-added event, so staff add numbers.

    Raises:
        GroupError: not an international number: ``+`` or ``00``, then the country
            code and the number (7 to 15 digits). Without it, a Nepali mobile such as
            98412... would be read as a number in Iran (+98).
    """
    written = re.sub(r"[\s().-]", "", number)
    digits = written[1:] if written.startswith("+") else written.removeprefix("00")
    if digits == written or not re.fullmatch(r"[1-9][0-9]{6,14}", digits):
        raise GroupError(f"'{number}' is not an international number such as +977 980 1234567")
    recipient = await find(session, "whatsapp", digits)
    if recipient is not None:
        recipient.title = title[:200]
        logger.info("whatsapp number %s known as recipient %s", digits, recipient.id)
        return recipient
    recipient = Recipient(
        channel="whatsapp", address=digits, kind="number", title=title[:200], status="pending"
    )
    session.add(recipient)
    await session.flush()
    logger.info("whatsapp number %s added as recipient %s, pending", digits, recipient.id)
    return recipient


async def approve(
    session: AsyncSession,
    recipient_id: int,
    communities: Sequence[str],
    language: str,
    station_code: str | None = None,
) -> Recipient:
    """Let a group receive the bulletins of ``communities`` in ``language``.

    Checked against the deployment as ``content load`` stored it: the communities must
    exist, the language must be spoken in one of them (or aired by the station), and
    the station, when given, must exist; its chat then also gets the "we aired it"
    button. Approving an approved group again changes its settings.

    Raises:
        GroupError: unknown recipient, community, language or station, or a group the
            bot has left or whose admins opted out.
    """
    recipient = await get(session, recipient_id)
    if recipient.status in ("inactive", "opted_out"):
        raise GroupError(_cannot_approve(recipient))

    found = await _communities(session, communities)
    station = await _station(session, station_code) if station_code else None
    spoken = {code for place in found for code in place.languages}
    spoken |= set(station.languages if station else [])
    if language not in spoken:
        raise GroupError(
            f"language '{language}' is not spoken in {', '.join(communities)}; "
            f"one of: {', '.join(sorted(spoken))}"
        )

    recipient.communities = [place.code for place in found]
    recipient.language = language
    recipient.station_id = station.id if station else None
    _set_status(recipient, "approved", None)
    logger.info(
        "group %s (%s:%s) approved for %s in %s, station %s",
        recipient.id,
        recipient.channel,
        recipient.address,
        ",".join(recipient.communities),
        language,
        station_code or "none",
    )
    return recipient


async def reject(session: AsyncSession, recipient_id: int, reason: str) -> Recipient:
    """Refuse a group: it receives nothing, and adding the bot again does not reopen it.

    Raises:
        GroupError: unknown recipient, or no reason given.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise GroupError("give a reason: the next person to look at this group reads it")
    recipient = await get(session, recipient_id)

    _set_status(recipient, "rejected", reason[:300])
    logger.info(
        "group %s (%s:%s) rejected: %s", recipient.id, recipient.channel, recipient.address, reason
    )
    return recipient


async def deactivate(
    session: AsyncSession, channel: str, address: str, reason: str
) -> Recipient | None:
    """The bot can no longer post in the chat (removed, blocked, chat gone); returns
    the recipient, or None for a chat that never registered. A rejected one stays so."""
    recipient = await find(session, channel, address)
    if recipient is None:
        logger.info("chat %s:%s left; it was never registered", channel, address)
        return None
    if recipient.status == "rejected":
        return recipient

    _set_status(recipient, "inactive", reason[:300])
    logger.info("group %s (%s:%s) inactive: %s", recipient.id, channel, address, reason)
    return recipient


async def migrate(
    session: AsyncSession, channel: str, old_address: str, new_address: str
) -> Recipient | None:
    """Move a group that Telegram upgraded to a supergroup to its new chat id, keeping
    its status and subscriptions. Returns the recipient at the new address, if any.

    Telegram tells both chats (``migrate_to_chat_id`` in the old one,
    ``migrate_from_chat_id`` in the new), so a second call finds nothing left to move.
    """
    old = await find(session, channel, old_address)
    if old is None:
        return await find(session, channel, new_address)

    # The bot may have met the new supergroup first and registered it as a new chat;
    # the old group's record is the one staff approved, so it wins.
    duplicate = await find(session, channel, new_address)
    if duplicate is not None:
        await session.delete(duplicate)
        await session.flush()
        logger.warning(
            "group %s (%s:%s) dropped: it is group %s after an upgrade",
            duplicate.id,
            channel,
            new_address,
            old.id,
        )

    old.address, old.kind = new_address, "supergroup"
    logger.info("group %s moved from %s:%s to %s", old.id, channel, old_address, new_address)
    return old


async def opt_out(session: AsyncSession, channel: str, address: str) -> Recipient | None:
    """An admin's /stop: an approved group stops receiving bulletins. Returns the
    recipient (unchanged unless it was approved), or None for an unknown chat."""
    recipient = await find(session, channel, address)
    if recipient is not None and recipient.status == "approved":
        _set_status(recipient, "opted_out", "an admin sent /stop")
        logger.info("group %s (%s:%s) opted out", recipient.id, channel, address)
    return recipient


async def opt_in(session: AsyncSession, channel: str, address: str) -> Recipient | None:
    """An admin's /start: an opted-out group receives bulletins again. Returns the
    recipient (unchanged unless it had opted out), or None for an unknown chat."""
    recipient = await find(session, channel, address)
    if recipient is not None and recipient.status == "opted_out":
        _set_status(recipient, "approved", None)
        logger.info("group %s (%s:%s) opted back in", recipient.id, channel, address)
    return recipient


async def listing(session: AsyncSession, status: str | None = None) -> list[Recipient]:
    """Recipients in the order they registered, only those of ``status`` if given.

    Raises:
        GroupError: ``status`` is not one of ``STATUSES``.
    """
    if status is not None and status not in STATUSES:
        raise GroupError(f"unknown status '{status}'; one of: {', '.join(STATUSES)}")
    query = select(Recipient).order_by(Recipient.id)
    if status is not None:
        query = query.where(Recipient.status == status)
    return list(await session.scalars(query))


async def station_code(session: AsyncSession, recipient: Recipient) -> str | None:
    """The code of the station whose chat this is, if it is one."""
    if recipient.station_id is None:
        return None
    station = await session.get(Station, recipient.station_id)
    return station.code if station else None


def _set_status(recipient: Recipient, status: str, reason: str | None) -> None:
    recipient.status = status
    recipient.status_reason = reason


def _cannot_approve(recipient: Recipient) -> str:
    if recipient.status == "inactive":
        return (
            f"group {recipient.id} is inactive ({recipient.status_reason or 'bot removed'}); "
            "it registers again when the bot is added back"
        )
    return f"group {recipient.id} opted out; one of its admins can send /start to opt back in"


async def _communities(session: AsyncSession, codes: Sequence[str]) -> list[Community]:
    if not codes:
        raise GroupError("name at least one community the group belongs to")
    rows = await session.scalars(select(Community).where(Community.code.in_(codes)))
    found = {place.code: place for place in rows}
    unknown = [code for code in codes if code not in found]
    if unknown:
        known = ", ".join(sorted(await session.scalars(select(Community.code))))
        raise GroupError(
            f"no community {', '.join(unknown)}; known: {known or 'none (helpdesk content load)'}"
        )
    return [found[code] for code in dict.fromkeys(codes)]


async def _station(session: AsyncSession, code: str) -> Station:
    station = await session.scalar(select(Station).where(Station.code == code))
    if station is None:
        known = ", ".join(sorted(await session.scalars(select(Station.code))))
        raise GroupError(f"no station '{code}'; known: {known or 'none (helpdesk content load)'}")
    return station
