"""Personal details planted where the intake keeps them, for the tests that prove viewers
and partners never see them: a CFA's name, phone number and chat id, the raw answers and
the place the CFA typed.
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import issues, review
from core.models import ChannelIdentity, Report
from core.services import Services
from tests.helpers import make_report

CFA_NAME = "Kamala Bishwokarma"
PHONE = "9779841234567"
CHAT_ID = "5550001234"
RAW_ANSWER = "Ram Bahadur Thapa at house 42 says the tap broke"
PLACE = "behind the Gajuri health post"
SECRETS = (CFA_NAME, "Bishwokarma", PHONE, "9841234567", CHAT_ID, "Ram Bahadur", PLACE)

SUMMARY = {"ne": "गजुरीको धारा बिग्रिएको छ।", "en": "The Gajuri tap is broken."}
OUTCOME = {"ne": "गजुरीको धारा बनेको छ।", "en": "The Gajuri tap is mended."}


@dataclass(frozen=True)
class Planted:
    """What was planted: the validated report, a sensitive one, and the resolved issue."""

    reference: str
    sensitive_reference: str
    issue_reference: str
    issue_id: int
    cfa_id: int
    secrets: tuple[str, ...]

    def leaks(self, text: str) -> list[str]:
        """Which planted details appear in ``text``."""
        return [secret for secret in self.secrets if secret in text]


async def plant_personal_report(services: Services) -> Planted:
    """A report from a CFA with a name, a Telegram chat id and a WhatsApp number,
    validated with a summary and attached to an issue that is then resolved; and a
    sensitive report by the same person."""
    report = await make_report(
        services,
        cfa_name=CFA_NAME,
        answers={"description": RAW_ANSWER, "place": PLACE, "phone": PHONE},
    )
    sensitive = await make_report(
        services,
        cfa_name=CFA_NAME,
        category="security",
        summary={"ne": "सुरक्षाको विषय।", "en": "A security matter."},
        answers={"description": RAW_ANSWER},
    )
    async with services.db.session() as session:
        found = await session.scalar(select(Report).where(Report.id == report.id))
        assert found is not None
        found.location_text, found.location_lat, found.location_lon = PLACE, 27.7123, 85.3211
        await _give_channels(session, found.cfa_id)
        await review.validate(session, services.deployment, found, SUMMARY, None)
        issue = await issues.create(
            session,
            title="Gajuri tap",
            staff_user_id=None,
            community_id=found.community_id,
            authority="Gajuri Rural Municipality",
        )
        await issues.attach(session, issue, found, None)
        await issues.change_status(session, issue, "resolved", None, outcome=OUTCOME)
        addresses = tuple(await session.scalars(select(ChannelIdentity.address)))
    return Planted(
        reference=report.reference,
        sensitive_reference=sensitive.reference,
        issue_reference=issue.reference,
        issue_id=issue.id,
        cfa_id=found.cfa_id,
        secrets=SECRETS + addresses,
    )


async def _give_channels(session: AsyncSession, cfa_id: int) -> None:
    identities = await session.scalars(
        select(ChannelIdentity).where(ChannelIdentity.cfa_id == cfa_id)
    )
    for identity in identities:
        identity.address = CHAT_ID
    session.add(ChannelIdentity(cfa_id=cfa_id, channel="whatsapp", address=PHONE))
