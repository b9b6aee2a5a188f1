"""The deployment: the programme's country, languages and communities, and the surveys it
runs, read from ``content/`` and synchronised into the database.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.surveys import Survey, checksum, load_surveys
from core.errors import ContentError
from core.models import Community, Station, SurveyDefinition
from core.templates import BulletinTemplate, load_template

logger = logging.getLogger(__name__)

DEPLOYMENT_FILE = "deployment.yaml"
STATIONS_FILE = "stations.yaml"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not an IANA time zone such as Asia/Kathmandu") from None
    return value


TimeZone = Annotated[str, AfterValidator(_check_zone)]


class CommunityConfig(BaseModel):
    """One community as the deployment file describes it."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=64)]
    name: dict[str, str]
    district: str
    municipality: str
    ward: str
    timezone: TimeZone
    languages: list[str] = Field(min_length=1)


class AudioConfig(BaseModel):
    """What a station's playout expects of the files it is given."""

    model_config = ConfigDict(extra="forbid")

    target_lufs: float = Field(default=-23.0, ge=-36.0, le=-9.0)
    max_true_peak: float = Field(default=-1.0, le=0.0)
    mp3_bitrate_kbps: Literal[64, 96, 128, 160, 192, 256, 320] = 128
    mp3_sample_rate: Literal[44100, 48000] = 44100
    max_duration_s: float | None = Field(default=None, gt=0)
    wav: bool = False
    music_bed: bool = False


LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class Airtime(BaseModel):
    """A weekly slot in the station's own time zone."""

    model_config = ConfigDict(extra="forbid")

    day: Literal[WEEKDAYS]  # type: ignore[valid-type]
    time: LocalTime
    # When that day's bulletin goes to the community groups (default: at airtime).
    groups_at: LocalTime | None = None


class StationConfig(BaseModel):
    """One station of ``content/stations.yaml``."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=64)]
    name: str
    spoken_name: dict[str, str] = Field(default_factory=dict)
    timezone: TimeZone
    languages: list[str] = Field(min_length=1)
    communities: list[str] = Field(min_length=1)
    programme: dict[str, str]
    audio: AudioConfig = Field(default_factory=AudioConfig)
    airtime: list[Airtime] = Field(default_factory=list)
    lead_time_minutes: int = Field(default=120, ge=0, le=6 * 24 * 60)
    # Approve the scheduled build at once, for programmes with no editor on duty.
    auto_approve: bool = False
    # Listeners the station states it reaches, counted once in each month it airs a
    # bulletin in the desk's "people reached" (stations measure it, we cannot).
    audience: int | None = Field(default=None, ge=0)

    def programme_name(self, language: str) -> str:
        """The programme's name in ``language``, or in English."""
        return self.programme.get(language) or self.programme.get("en") or self.name


class RemindersConfig(BaseModel):
    """When CFAs who have not answered this month's survey are reminded."""

    model_config = ConfigDict(extra="forbid")

    survey: str = "monthly"
    days_of_month: list[Annotated[int, Field(ge=1, le=28)]] = Field(min_length=1)
    time: LocalTime
    timezone: TimeZone


class DeploymentConfig(BaseModel):
    """The whole ``content/deployment.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: dict[str, str]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    default_language: str
    languages: list[str] = Field(min_length=1)
    communities: list[CommunityConfig] = Field(min_length=1)
    sensitive_categories: list[str] = Field(
        default_factory=lambda: ["security", "justice", "trafficking"]
    )
    reminders: RemindersConfig | None = None


@dataclass(frozen=True)
class Deployment:
    """The deployment file and the surveys, loaded and checked together."""

    config: DeploymentConfig
    surveys: dict[str, Survey]
    stations: dict[str, StationConfig]
    templates: dict[str, BulletinTemplate]

    @property
    def languages(self) -> list[str]:
        """The languages CFAs can choose."""
        return self.config.languages


def load_deployment(content_dir: Path) -> Deployment:
    """Read and check the deployment, its stations, bulletin templates and surveys.

    Raises:
        ContentError: a file is missing or wrong; the message names file, key and problem.
    """
    try:
        config = DeploymentConfig.model_validate(_read(content_dir, DEPLOYMENT_FILE))
    except ValidationError as error:
        raise _content_error(DEPLOYMENT_FILE, error) from error
    if config.default_language not in config.languages:
        raise ContentError(DEPLOYMENT_FILE, "default_language", "must be one of 'languages'")

    surveys = load_surveys(content_dir, config.languages)
    if config.reminders and config.reminders.survey not in surveys:
        raise ContentError(DEPLOYMENT_FILE, "reminders.survey", "is not a survey in surveys/")
    stations = _load_stations(content_dir, config)
    languages = sorted({code for station in stations.values() for code in station.languages})
    templates = {code: load_template(content_dir, code) for code in languages}
    return Deployment(config=config, surveys=surveys, stations=stations, templates=templates)


def _read(content_dir: Path, name: str, *, optional: bool = False) -> Any:
    path = content_dir / name
    if optional and not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ContentError(name, "(file)", f"cannot be read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ContentError(name, "(file)", f"is not valid YAML: {error}") from error


def _load_stations(content_dir: Path, config: DeploymentConfig) -> dict[str, StationConfig]:
    data = _read(content_dir, STATIONS_FILE, optional=True) or {"stations": []}
    entries = []
    for number, entry in enumerate(data.get("stations") or []):
        try:
            entries.append(StationConfig.model_validate(entry))
        except ValidationError as error:
            raise _content_error(STATIONS_FILE, error, f"stations[{number}]") from error

    communities = {community.code for community in config.communities}
    stations: dict[str, StationConfig] = {}
    for number, station in enumerate(entries):
        unknown = sorted(set(station.communities) - communities)
        if unknown:
            raise ContentError(
                STATIONS_FILE,
                f"stations[{number}].communities",
                f"unknown community {', '.join(unknown)}",
            )
        if station.code in stations:
            raise ContentError(STATIONS_FILE, f"stations[{number}].code", "used twice")
        stations[station.code] = station
    return stations


def _content_error(name: str, error: ValidationError, prefix: str = "") -> ContentError:
    first = error.errors()[0]
    key = ".".join(
        [prefix, *(str(part) for part in first["loc"])]
        if prefix
        else [str(part) for part in first["loc"]]
    )
    return ContentError(name, key, first["msg"].removeprefix("Value error, "))


async def sync_deployment(session: AsyncSession, deployment: Deployment) -> dict[str, int]:
    """Bring communities and survey definitions in the database in line with the files.

    Communities are matched by code and updated in place; a survey gets a new stored
    version only when its content changed, so running this twice changes nothing.

    Returns:
        How many communities and survey versions were added.
    """
    added = {"communities": 0, "stations": 0, "survey_versions": 0}
    for entry in deployment.config.communities:
        added["communities"] += await _upsert_community(session, entry)
    for station in deployment.stations.values():
        added["stations"] += await _upsert_station(session, station)
    for survey in deployment.surveys.values():
        added["survey_versions"] += await _store_survey(session, survey)
    logger.info("deployment synchronised: %s", added)
    return added


async def _upsert_community(session: AsyncSession, entry: CommunityConfig) -> int:
    community = await session.scalar(select(Community).where(Community.code == entry.code))
    values = entry.model_dump()
    if community is None:
        session.add(Community(**values))
        return 1
    for field, value in values.items():
        setattr(community, field, value)
    return 0


async def _upsert_station(session: AsyncSession, entry: StationConfig) -> int:
    station = await session.scalar(select(Station).where(Station.code == entry.code))
    values = {
        "name": entry.name,
        "timezone": entry.timezone,
        "languages": entry.languages,
        "communities": entry.communities,
        "settings": entry.model_dump(mode="json"),
    }
    if station is None:
        session.add(Station(code=entry.code, **values))
        return 1
    for field, value in values.items():
        setattr(station, field, value)
    return 0


async def _store_survey(session: AsyncSession, survey: Survey) -> int:
    digest = checksum(survey)
    existing = await session.scalar(
        select(SurveyDefinition.id).where(
            SurveyDefinition.survey_id == survey.id, SurveyDefinition.checksum == digest
        )
    )
    if existing is not None:
        return 0
    session.add(
        SurveyDefinition(
            survey_id=survey.id,
            version=survey.version,
            kind=survey.kind,
            checksum=digest,
            definition=survey.model_dump(mode="json", by_alias=True, exclude_none=True),
        )
    )
    return 1
