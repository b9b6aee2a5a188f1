"""The deployment: the programme's country, languages and communities, and the surveys it
runs, read from ``content/`` and synchronised into the database.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.surveys import Survey, checksum, load_surveys
from core.errors import ContentError
from core.models import Community, SurveyDefinition

logger = logging.getLogger(__name__)

DEPLOYMENT_FILE = "deployment.yaml"


class CommunityConfig(BaseModel):
    """One community as the deployment file describes it."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=64)]
    name: dict[str, str]
    district: str
    municipality: str
    ward: str
    timezone: str
    languages: list[str] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{value}' is not an IANA time zone such as Asia/Kathmandu"
            ) from None
        return value


class DeploymentConfig(BaseModel):
    """The whole ``content/deployment.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: dict[str, str]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    default_language: str
    languages: list[str] = Field(min_length=1)
    communities: list[CommunityConfig] = Field(min_length=1)


@dataclass(frozen=True)
class Deployment:
    """The deployment file and the surveys, loaded and checked together."""

    config: DeploymentConfig
    surveys: dict[str, Survey]

    @property
    def languages(self) -> list[str]:
        """The languages CFAs can choose."""
        return self.config.languages


def load_deployment(content_dir: Path) -> Deployment:
    """Read and check ``deployment.yaml`` and every survey under ``content_dir``.

    Raises:
        ContentError: a file is missing or wrong; the message names file, key and problem.
    """
    path = content_dir / DEPLOYMENT_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        config = DeploymentConfig.model_validate(data)
    except OSError as error:
        raise ContentError(DEPLOYMENT_FILE, "(file)", f"cannot be read: {error}") from error
    except yaml.YAMLError as error:
        raise ContentError(DEPLOYMENT_FILE, "(file)", f"is not valid YAML: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ContentError(DEPLOYMENT_FILE, key, first["msg"]) from error

    if config.default_language not in config.languages:
        raise ContentError(DEPLOYMENT_FILE, "default_language", "must be one of 'languages'")
    surveys = load_surveys(content_dir, config.languages)
    return Deployment(config=config, surveys=surveys)


async def sync_deployment(session: AsyncSession, deployment: Deployment) -> dict[str, int]:
    """Bring communities and survey definitions in the database in line with the files.

    Communities are matched by code and updated in place; a survey gets a new stored
    version only when its content changed, so running this twice changes nothing.

    Returns:
        How many communities and survey versions were added.
    """
    added = {"communities": 0, "survey_versions": 0}
    for entry in deployment.config.communities:
        added["communities"] += await _upsert_community(session, entry)
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
