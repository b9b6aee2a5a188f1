"""Community groups' lifecycle in ``core.groups``, on SQLite and PostgreSQL."""

import pytest

from core import groups
from core.models import Recipient
from core.services import Services

OLD_GROUP = "-4123456789"
SUPERGROUP = "-1004123456789"


async def added(services: Services, address: str = OLD_GROUP, kind: str = "group") -> Recipient:
    async with services.db.session() as session:
        return await groups.register(session, "telegram", address, kind, "Ward 4")


async def approved(services: Services, address: str = OLD_GROUP) -> Recipient:
    recipient = await added(services, address)
    async with services.db.session() as session:
        return await groups.approve(session, recipient.id, ["dhading-gajuri-3"], "ne")


async def stored(services: Services, address: str) -> Recipient | None:
    async with services.db.session() as session:
        return await groups.find(session, "telegram", address)


async def test_a_new_group_is_pending_and_promoting_the_bot_keeps_it_approved(
    services: Services,
) -> None:
    first = await added(services)
    await approved(services)
    async with services.db.session() as session:
        again = await groups.register(session, "telegram", OLD_GROUP, "group", "Ward 4 news")

    assert first.status == "pending"
    assert again.id == first.id and again.status == "approved" and again.title == "Ward 4 news"


async def test_a_group_added_back_after_removal_waits_for_approval_again(
    services: Services,
) -> None:
    await approved(services)
    async with services.db.session() as session:
        await groups.deactivate(session, "telegram", OLD_GROUP, "bot left")
    inactive = await stored(services, OLD_GROUP)
    back = await added(services)

    assert inactive is not None and inactive.status == "inactive"
    assert inactive.status_reason == "bot left"
    assert back.status == "pending" and back.communities == ["dhading-gajuri-3"]


async def test_a_rejected_group_stays_rejected_when_added_again_but_gets_its_new_title(
    services: Services,
) -> None:
    recipient = await added(services)
    async with services.db.session() as session:
        await groups.reject(session, recipient.id, "not a community group")
        await groups.deactivate(session, "telegram", OLD_GROUP, "bot left")
    async with services.db.session() as session:
        again = await groups.register(session, "telegram", OLD_GROUP, "group", "Renamed")

    assert again.status == "rejected" and again.title == "Renamed"
    assert again.status_reason == "not a community group"


async def test_approval_sets_communities_language_and_station(services: Services) -> None:
    recipient = await added(services, SUPERGROUP, "supergroup")
    async with services.db.session() as session:
        await groups.approve(
            session, recipient.id, ["dhading-gajuri-3"], "ne", station_code="radio-dhading"
        )
    async with services.db.session() as session:
        reloaded = await groups.get(session, recipient.id)
        station = await groups.station_code(session, reloaded)

    assert (reloaded.status, reloaded.language, reloaded.communities, station) == (
        "approved",
        "ne",
        ["dhading-gajuri-3"],
        "radio-dhading",
    )


async def test_approval_refuses_what_the_deployment_does_not_have(services: Services) -> None:
    recipient = await added(services)
    wrong = [
        (["atlantis-1"], "ne", None, "no community atlantis-1; known: banke-kohalpur-7"),
        (["dhading-gajuri-3"], "fr", None, "language 'fr' is not spoken in dhading-gajuri-3"),
        (["dhading-gajuri-3"], "ne", "radio-nowhere", "no station 'radio-nowhere'"),
        ([], "ne", None, "name at least one community"),
    ]

    for communities, language, station, problem in wrong:
        with pytest.raises(groups.GroupError, match=problem):
            async with services.db.session() as session:
                await groups.approve(session, recipient.id, communities, language, station)
    after = await stored(services, OLD_GROUP)
    assert after is not None and after.status == "pending" and after.language is None


async def test_unknown_ids_and_statuses_are_named_in_the_error(services: Services) -> None:
    async with services.db.session() as session:
        with pytest.raises(groups.GroupError, match="no group 999"):
            await groups.approve(session, 999, ["dhading-gajuri-3"], "ne")
        with pytest.raises(groups.GroupError, match="no group 999"):
            await groups.reject(session, 999, "spam")
        with pytest.raises(groups.GroupError, match="unknown status 'open'"):
            await groups.listing(session, "open")


async def test_an_upgraded_group_keeps_its_subscription_under_the_new_chat_id(
    services: Services,
) -> None:
    before = await approved(services)
    # The bot met the new supergroup before the migration message arrived.
    await added(services, SUPERGROUP, "supergroup")
    async with services.db.session() as session:
        moved = await groups.migrate(session, "telegram", OLD_GROUP, SUPERGROUP)
    async with services.db.session() as session:
        again = await groups.migrate(session, "telegram", OLD_GROUP, SUPERGROUP)
        everyone = await groups.listing(session)

    assert moved is not None and again is not None and moved.id == again.id == before.id
    assert [(r.address, r.kind, r.status, r.communities) for r in everyone] == [
        (SUPERGROUP, "supergroup", "approved", ["dhading-gajuri-3"])
    ]
    assert await stored(services, OLD_GROUP) is None


async def test_only_an_approved_group_opts_out_and_only_an_opted_out_one_back_in(
    services: Services,
) -> None:
    pending = await added(services, SUPERGROUP, "supergroup")
    await approved(services)
    async with services.db.session() as session:
        still_pending = await groups.opt_out(session, "telegram", SUPERGROUP)
        opted_out = await groups.opt_out(session, "telegram", OLD_GROUP)
        assert opted_out is not None and opted_out.status == "opted_out"
        unknown = await groups.opt_in(session, "telegram", "-1")
        back = await groups.opt_in(session, "telegram", OLD_GROUP)

    assert still_pending is not None and still_pending.id == pending.id
    assert still_pending.status == "pending" and unknown is None
    assert back is not None and back.status == "approved" and back.status_reason is None


async def test_listing_filters_by_status(services: Services) -> None:
    await added(services, SUPERGROUP, "supergroup")
    await approved(services)
    async with services.db.session() as session:
        pending = await groups.listing(session, "pending")
        every = await groups.listing(session)

    assert [r.address for r in pending] == [SUPERGROUP]
    assert [r.address for r in every] == [SUPERGROUP, OLD_GROUP]


async def test_a_chat_that_never_registered_is_left_alone(services: Services) -> None:
    async with services.db.session() as session:
        gone = await groups.deactivate(session, "telegram", "-777", "bot kicked")
        with pytest.raises(groups.GroupError, match="is a private"):
            await groups.register(session, "telegram", "42", "private", "Sita")

    assert gone is None


async def test_a_whatsapp_number_is_added_pending_then_approved_like_a_group(
    services: Services,
) -> None:
    async with services.db.session() as session:
        added = await groups.register_number(session, "+977 980-123 4567", "Ward chair")
        again = await groups.register_number(session, "009779801234567", "Ward 4 chair")
        approved = await groups.approve(session, added.id, ["dhading-gajuri-3"], "ne")

    assert again.id == added.id and again.title == "Ward 4 chair"
    assert (added.channel, added.address, added.kind) == ("whatsapp", "9779801234567", "number")
    assert approved.status == "approved"


# 9841234567 is a Nepali mobile written without its country code: +98 would be Iran.
@pytest.mark.parametrize("number", ["980123", "+0 123 456 789", "call me", "9841234567"])
async def test_a_number_that_is_not_international_is_refused(
    services: Services, number: str
) -> None:
    async with services.db.session() as session:
        with pytest.raises(groups.GroupError, match="international number"):
            await groups.register_number(session, number, "someone")
