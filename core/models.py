"""The data model: who reports (communities, CFAs and their channel identities), what
they report (survey definitions, conversation sessions, reports, media) and the ledger
that makes intake idempotent (processed updates).

Report status lifecycle (later stages come with the staff desk)::

    received ──> validated ──> (attached to an issue) ──> ... ──> resolved
        └──────> rejected / duplicate
"""

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.db import UtcDateTime, utcnow


class Base(DeclarativeBase):
    """Declarative base of every table; ``Base.metadata`` is what Alembic compares."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Community(Base):
    """A place the programme serves: a ward, or the local equivalent."""

    __tablename__ = "community"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[dict[str, Any]]
    district: Mapped[str] = mapped_column(String(120))
    municipality: Mapped[str] = mapped_column(String(160))
    ward: Mapped[str] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64))
    languages: Mapped[list[Any]]

    def display_name(self, language: str) -> str:
        """The community's name in ``language``, or in English, or its code."""
        return str(self.name.get(language) or self.name.get("en") or self.code)


class Cfa(Base):
    """A Community Frontline Associate: a registered volunteer reporter."""

    __tablename__ = "cfa"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    language: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    role: Mapped[str] = mapped_column(String(16), default="reporter", server_default="reporter")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set by /stop: no reminders or bulletins until the CFA opts back in with /start.
    opted_out_at: Mapped[datetime | None]

    community: Mapped[Community] = relationship(lazy="joined")
    identities: Mapped[list["ChannelIdentity"]] = relationship(back_populates="cfa")


class ChannelIdentity(Base):
    """How one CFA is reached on one channel: a Telegram chat id, a WhatsApp number."""

    __tablename__ = "channel_identity"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cfa_id: Mapped[int] = mapped_column(ForeignKey("cfa.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the person last wrote to us, by the platform's clock: WhatsApp allows free-form
    # messages only within 24 hours of it, and templates outside.
    last_inbound_at: Mapped[datetime | None]

    cfa: Mapped[Cfa] = relationship(back_populates="identities", lazy="joined")


class Invite(Base):
    """A one-time code with which a new CFA registers (``/start <code>``)."""

    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    language: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="reporter", server_default="reporter")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    cfa_id: Mapped[int | None] = mapped_column(ForeignKey("cfa.id"))

    community: Mapped[Community] = relationship(lazy="joined")


class SurveyDefinition(Base):
    """One version of a survey file from ``content/surveys``, frozen as it was loaded.

    A conversation keeps the version it started with, so an editor changing a survey
    never breaks a CFA who is half-way through it.
    """

    __tablename__ = "survey_definition"
    __table_args__ = (UniqueConstraint("survey_id", "checksum"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    checksum: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationSession(Base):
    """Where one CFA is in the conversation; saved before every reply.

    Lifecycle::

        idle ──/survey, /report──> asking ──last question──> review ──send──> idle
                                     ^ │ /back                       │ change an answer
                                     └─┘<────────────────────────────┘
        asking, review ──/cancel──> cancelling ──yes──> idle (──no──> where it was)
        any state ──/language──> language ──chosen──> where it was

    The next question is always the first applicable one without an answer, so /back and
    "change an answer" need no history: they clear nothing and move ``question_id``.
    """

    __tablename__ = "conversation_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    cfa_id: Mapped[int] = mapped_column(ForeignKey("cfa.id", ondelete="CASCADE"), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="idle")
    survey_definition_id: Mapped[int | None] = mapped_column(ForeignKey("survey_definition.id"))
    question_id: Mapped[str | None] = mapped_column(String(64))
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    draft: Mapped[list[Any] | None]
    pending: Mapped[dict[str, Any] | None]
    resume_state: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Report(Base):
    """What a CFA sent: a completed survey or a problem report, with its answers."""

    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    cfa_id: Mapped[int] = mapped_column(ForeignKey("cfa.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    survey_definition_id: Mapped[int] = mapped_column(ForeignKey("survey_definition.id"))
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict[str, Any]]
    location_lat: Mapped[float | None] = mapped_column(Float)
    location_lon: Mapped[float | None] = mapped_column(Float)
    location_text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="received")
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    summary: Mapped[dict[str, Any] | None]
    sensitive: Mapped[bool] = mapped_column(default=False, server_default=false())
    validated_at: Mapped[datetime | None]
    validated_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    rejected_reason: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("report.id"))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issue.id", ondelete="SET NULL"))

    cfa: Mapped[Cfa] = relationship(lazy="joined")
    community: Mapped[Community] = relationship(lazy="joined")
    survey: Mapped[SurveyDefinition] = relationship()
    media: Mapped[list["Media"]] = relationship(back_populates="report")
    issue: Mapped["Issue | None"] = relationship(back_populates="reports")


class Media(Base):
    """A photo or voice note a CFA sent, stored under the media folder."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(primary_key=True)
    cfa_id: Mapped[int] = mapped_column(ForeignKey("cfa.id"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("report.id"))
    question_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(300))
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    report: Mapped[Report | None] = relationship(back_populates="media")


class ProcessedUpdate(Base):
    """The intake ledger: one row per update a channel delivered, whatever it was.

    The primary key makes a redelivered update a conflict in the database, so it is
    processed once even when two deliveries arrive at the same moment. ``payload`` holds
    the raw update only until it is processed, so an update accepted by the webhook but
    interrupted by a crash is processed after the restart, and nothing about a person
    stays here once it has been handled.
    """

    __tablename__ = "processed_update"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any] | None]


class Counter(Base):
    """A named sequence, such as the yearly number in report references."""

    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Station(Base):
    """A radio station that airs the programme's bulletins, as ``content/stations.yaml``
    describes it (synchronised like the communities)."""

    __tablename__ = "station"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    languages: Mapped[list[Any]]
    communities: Mapped[list[Any]]
    settings: Mapped[dict[str, Any]]
    # SHA-256 of the station's access token; the token itself is shown once and not kept.
    token_hash: Mapped[str | None] = mapped_column(String(64))


class Bulletin(Base):
    """One edition of a station's bulletin: its script per language and its audio.

    Lifecycle::

        draft ──render──> rendered ──approve──> approved ──station confirms──> aired
          ^ edit items       │ edit items: back to draft
          └──────────────────┘

    Only approved (or aired) bulletins are in feeds and broadcasts.
    """

    __tablename__ = "bulletin"
    # Bulletin numbers are what journalists type in /record: never hand one out twice.
    __table_args__ = (UniqueConstraint("station_id", "air_date"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("station.id"))
    air_date: Mapped[date] = mapped_column(Date)
    air_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    approved_at: Mapped[datetime | None]
    aired_at: Mapped[datetime | None]
    # How the airing was confirmed: "api", "telegram" or "staff".
    aired_via: Mapped[str | None] = mapped_column(String(16))

    station: Mapped[Station] = relationship(lazy="joined")
    items: Mapped[list["BulletinItem"]] = relationship(
        back_populates="bulletin",
        order_by="(BulletinItem.language, BulletinItem.position)",
        cascade="all, delete-orphan",
    )


class BulletinItem(Base):
    """One paragraph of a bulletin's script in one language, as the editor left it."""

    __tablename__ = "bulletin_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletin.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(16))
    position: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("report.id"))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issue.id", ondelete="SET NULL"))

    bulletin: Mapped[Bulletin] = relationship(back_populates="items")


class BulletinFile(Base):
    """A rendered audio file of a bulletin, with what was measured on the file itself."""

    __tablename__ = "bulletin_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletin.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float] = mapped_column(Float)
    lufs: Mapped[float] = mapped_column(Float)
    true_peak_dbtp: Mapped[float] = mapped_column(Float)
    sha256: Mapped[str] = mapped_column(String(64))
    engines: Mapped[list[Any]]
    rendered_at: Mapped[datetime] = mapped_column(default=utcnow)


class Recording(Base):
    """A person reading a bulletin's script in one language, used instead of a voice."""

    __tablename__ = "recording"
    __table_args__ = (UniqueConstraint("bulletin_id", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletin.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(300))
    mime_type: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    cfa_id: Mapped[int | None] = mapped_column(ForeignKey("cfa.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StationDownload(Base):
    """One request a station made for a bulletin's audio: who, what, which bytes, answer."""

    __tablename__ = "station_download"
    __table_args__ = (Index("ix_station_download_station_at", "station_id", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("station.id", ondelete="CASCADE"))
    bulletin_id: Mapped[int | None] = mapped_column(ForeignKey("bulletin.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(300))
    method: Mapped[str] = mapped_column(String(8))
    byte_range: Mapped[str | None] = mapped_column(String(100))
    status_code: Mapped[int]
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    client: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)


class Recipient(Base):
    """A community group or channel that receives bulletins.

    Lifecycle::

        bot added to the chat ──> pending ──staff approve──> approved <──/start── opted_out
                                     └──staff reject──> rejected     └──/stop──>──┘
        approved ──bot removed, blocked, chat gone──> inactive
    """

    __tablename__ = "recipient"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    communities: Mapped[list[Any]] = mapped_column(default=list)
    # A station's own chat also gets the "we aired it" button.
    station_id: Mapped[int | None] = mapped_column(ForeignKey("station.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Broadcast(Base):
    """Sending one bulletin to its community groups; its deliveries are outbox rows."""

    __tablename__ = "broadcast"
    __table_args__ = (UniqueConstraint("bulletin_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletin.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    recipients: Mapped[int] = mapped_column(default=0)


class SentMessage(Base):
    """A message a platform accepted, by the platform's id (a WhatsApp ``wamid``), with
    the furthest delivery status reported for it and the platform's time of it.

    Statuses only move forward (sent < delivered < read); ``failed`` is final and wins
    over anything but itself, so a late "delivered" cannot hide a failure.
    """

    __tablename__ = "sent_message"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    address: Mapped[str] = mapped_column(String(64))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    part_index: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(16))  # free-form text, template, voice...
    status: Mapped[str] = mapped_column(String(16), default="sent")
    status_at: Mapped[datetime | None]
    error_code: Mapped[int | None]
    error_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """The delivery ledger: one message (in one or more parts) to one address.

    Broadcast deliveries, reminders and status notifications all pass through here, on
    any channel. ``dedupe_key`` makes queueing idempotent (one row per broadcast and
    recipient, one reminder per CFA and day); ``parts_sent`` is committed after every
    part, so a delivery resumed after a crash sends only what was not yet sent.

    Lifecycle::

        queued ──all parts sent──> sent
          │ ^ 429, network: wait, retry    ──too many attempts──> failed
          │ └──┘
          ├──blocked, kicked, deactivated──> blocked (recipient set inactive)
          └──chat not found──> not_found
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcast.id", ondelete="CASCADE")
    )
    recipient_id: Mapped[int | None] = mapped_column(
        ForeignKey("recipient.id", ondelete="SET NULL")
    )
    cfa_id: Mapped[int | None] = mapped_column(ForeignKey("cfa.id", ondelete="SET NULL"))
    parts: Mapped[list[Any]]
    parts_sent: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    error_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class SchedulerLease(Base):
    """Which process may fire scheduled jobs; renewed while it lives, taken over after."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class JobRun(Base):
    """One firing of a scheduled job; the key makes a fire run once even if two try."""

    __tablename__ = "job_run"

    job_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    fire_time: Mapped[datetime] = mapped_column(primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)


class StaffUser(Base):
    """Someone who uses the staff desk: admin, editor, or viewer (read-only, anonymised)."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffSession(Base):
    """A signed-in browser: the cookie holds a random id whose SHA-256 is stored here."""

    __tablename__ = "staff_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    user: Mapped[StaffUser] = relationship(lazy="joined")


class LoginAttempt(Base):
    """One try to sign in, kept for throttling by username and by client address."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_at", "attempted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(120))
    client: Mapped[str | None] = mapped_column(String(64))
    succeeded: Mapped[bool]
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)


class Issue(Base):
    """One problem taken to the authorities, gathering the reports about it.

    Lifecycle::

        open ──> referred ──> responded ──> in_progress ──> resolved
          └────────┴─────────────┴──────────────┴──────> closed (without resolution)
    """

    __tablename__ = "issue"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"))
    category: Mapped[str | None] = mapped_column(String(64))
    authority: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # What staff say to the CFAs about the outcome, per language.
    outcome: Mapped[dict[str, Any] | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None]

    reports: Mapped[list[Report]] = relationship(back_populates="issue")


class AuditEntry(Base):
    """Append-only: who did what, when, to which object, with their note."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str | None] = mapped_column(Text)


class InfoRequest(Base):
    """Staff asking a report's CFA for more information, and the CFA's answer."""

    __tablename__ = "info_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(Text)
    asked_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]


class ApiToken(Base):
    """A partner's token for the read API; only its SHA-256 is kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
