"""Rendering a bulletin's edited script to the files a station airs.

Kept apart from :mod:`core.bulletins` because it pulls in the audio stack (numpy, scipy),
which the chat engine and most commands never need.
"""

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from audio import (
    AudioPrefs,
    ProgramItem,
    RenderResult,
    Tags,
    Voices,
    duration_by_decoding,
    estimate,
    fit,
    render_program,
)
from core.bulletins import BulletinError, editable, get_bulletin, script
from core.config import Settings
from core.db import Database
from core.deployment import Deployment, StationConfig
from core.lease import Lease, process_name
from core.models import Bulletin, BulletinFile, Recording

logger = logging.getLogger(__name__)


# Longer than any render takes; a process that died mid-render frees it after this.
RENDER_LEASE_SECONDS = 1800.0


class BulletinTooLong(BulletinError):
    """The script does not fit the station's slot; nothing was rendered or cut.

    Attributes:
        language: the script that is too long.
        over: ``(number, seconds, first words)`` of each item that ends past the limit.
    """

    def __init__(
        self,
        bulletin_id: int,
        language: str,
        limit: float,
        total: float,
        over: list[tuple[int, float, str]],
    ) -> None:
        self.language = language
        self.over = over
        listed = "; ".join(f"item {n} ({s:.0f} s: {words})" for n, s, words in over)
        super().__init__(
            f"bulletin {bulletin_id} ({language}) would play {total:.0f} s, over the station's "
            f"{limit:.0f} s; these items do not fit: {listed}. Drop or shorten them "
            f"(helpdesk bulletin drop/edit) and render again."
        )


@dataclass
class RenderedLanguage:
    """The files of one language and the engine that spoke each item."""

    language: str
    engines: list[str]
    files: list[BulletinFile]


@dataclass(frozen=True)
class _Job:
    language: str
    items: list[ProgramItem]
    recording: Path | None


async def render(
    db: Database, deployment: Deployment, settings: Settings, bulletin_id: int
) -> list[RenderedLanguage]:
    """Render every language of a bulletin to the station's formats and record the files.

    Each language is checked against the station's maximum duration first (by speaking
    its items, which the render then reuses); a script that does not fit is refused with
    the items that overrun, and nothing is cut. One render of a bulletin runs at a time,
    in any process: two would write the same files at once and leave broken audio.

    Raises:
        BulletinError: no such bulletin, it is approved and can no longer change, or it
            is being rendered already.
        BulletinTooLong: a language does not fit the slot.
        NoVoiceError: a language that no engine speaks here and that has no recording.
    """
    lease = Lease(db, f"render:{bulletin_id}", process_name(), RENDER_LEASE_SECONDS)
    if not await lease.acquire():
        raise BulletinError(
            f"bulletin {bulletin_id} is being rendered already; wait for it to finish"
        )
    try:
        return await _render(db, deployment, settings, bulletin_id)
    finally:
        await lease.release()


async def _render(
    db: Database, deployment: Deployment, settings: Settings, bulletin_id: int
) -> list[RenderedLanguage]:
    async with db.session() as session:
        bulletin = await editable(session, bulletin_id)
        station = deployment.stations[bulletin.station.code]
        jobs = [
            await _job(session, settings, bulletin, language) for language in station.languages
        ]
        air_date = bulletin.air_date

    prefs = _prefs(station)
    out_dir = settings.resolved_media_dir / "bulletins" / station.code / air_date.isoformat()
    out_dir.mkdir(parents=True, exist_ok=True)
    jingles = _jingles(settings, station)
    rendered: list[tuple[_Job, RenderResult]] = []
    with tempfile.TemporaryDirectory(prefix=f"bulletin-{bulletin_id}-") as work:
        # Every language is checked before any is rendered, so the editor hears of every
        # problem at once and no half-rendered bulletin is left behind.
        voices = {job.language: _voices(settings, job) for job in jobs}
        frame = await _frame_seconds(jingles)
        for job in jobs:
            await _check_fit(bulletin_id, job, prefs, voices[job.language], Path(work), frame)
        for job in jobs:
            result = await render_program(
                job.items,
                prefs,
                voices=voices[job.language],
                workdir=Path(work),
                out_dir=out_dir,
                basename=f"{station.code}-{air_date.isoformat()}-{job.language}",
                tags=_tags(station, job.language, air_date),
                intro=jingles["intro"],
                outro=jingles["outro"],
                bed=jingles["bed"],
            )
            rendered.append((job, result))

    return await _record_files(db, settings, bulletin_id, rendered)


async def _job(
    session: AsyncSession, settings: Settings, bulletin: Bulletin, language: str
) -> _Job:
    recording = await session.scalar(
        select(Recording).where(
            Recording.bulletin_id == bulletin.id, Recording.language == language
        )
    )
    if recording is not None:
        # A person read the whole script: it is one item, spoken by the recording.
        path = settings.resolved_media_dir / recording.path
        return _Job(language, [ProgramItem(f"recording {recording.id}", language)], path)
    items = [ProgramItem(item.text, language) for item in script(bulletin, language)]
    if not items:
        raise BulletinError(f"bulletin {bulletin.id} has no {language} script to render")
    return _Job(language, items, None)


def _voices(settings: Settings, job: _Job) -> Voices:
    return Voices(settings, {job.language: job.recording} if job.recording else None)


async def _check_fit(
    bulletin_id: int,
    job: _Job,
    prefs: AudioPrefs,
    voices: Voices,
    work: Path,
    frame: dict[str, float],
) -> None:
    seconds = await estimate(job.items, voices, work)
    if prefs.max_duration_s is None:
        return
    over = fit(seconds, prefs, **frame)
    if over:
        pause = prefs.pause_ms / 1000
        total = sum(seconds) + sum(frame.values()) + pause * (len(seconds) + len(frame) - 1)
        listed = [
            (i + 1, seconds[i], " ".join(job.items[i].text.split()[:6]) + " …") for i in over
        ]
        raise BulletinTooLong(bulletin_id, job.language, prefs.max_duration_s, total, listed)


async def _frame_seconds(jingles: dict[str, Path | None]) -> dict[str, float]:
    """How long the intro and outro play, as :func:`audio.fit` takes them."""
    return {
        f"{name}_s": await asyncio.to_thread(duration_by_decoding, path)
        for name, path in jingles.items()
        if path is not None and name in ("intro", "outro")
    }


def _prefs(station: StationConfig) -> AudioPrefs:
    audio = station.audio
    return AudioPrefs(
        target_lufs=audio.target_lufs,
        max_true_peak=audio.max_true_peak,
        mp3_bitrate_kbps=audio.mp3_bitrate_kbps,
        mp3_sample_rate=audio.mp3_sample_rate,
        max_duration_s=audio.max_duration_s,
        wav=audio.wav,
    )


def _jingles(settings: Settings, station: StationConfig) -> dict[str, Path | None]:
    folder = settings.content_dir / "jingles"

    def find(name: str) -> Path | None:
        return next(iter(sorted(folder.glob(f"{name}.*"))), None) if folder.is_dir() else None

    bed = find("bed") if station.audio.music_bed else None
    return {"intro": find("intro"), "outro": find("outro"), "bed": bed}


def _tags(station: StationConfig, language: str, air_date: date) -> Tags:
    programme = station.programme_name(language)
    return Tags(
        title=f"{programme} {air_date.isoformat()}",
        artist=station.name,
        album=programme,
        language=language,
        air_date=air_date,
    )


async def _record_files(
    db: Database, settings: Settings, bulletin_id: int, rendered: list[tuple[_Job, RenderResult]]
) -> list[RenderedLanguage]:
    media = settings.resolved_media_dir
    async with db.session() as session:
        bulletin = await get_bulletin(session, bulletin_id)
        await session.execute(delete(BulletinFile).where(BulletinFile.bulletin_id == bulletin_id))
        languages = []
        for job, result in rendered:
            files = [
                BulletinFile(
                    bulletin_id=bulletin_id,
                    language=job.language,
                    format=file.format,
                    path=file.path.relative_to(media).as_posix(),
                    size=file.size,
                    duration_s=file.duration_s,
                    lufs=file.lufs,
                    true_peak_dbtp=file.true_peak_dbtp,
                    sha256=file.sha256,
                    engines=sorted(set(result.engines)),
                )
                for file in result.files
            ]
            session.add_all(files)
            languages.append(RenderedLanguage(job.language, result.engines, files))
        bulletin.status = "rendered"
    logger.info(
        "bulletin %s rendered: %d files", bulletin_id, sum(len(lang.files) for lang in languages)
    )
    return languages
