"""From reports that came in through chat to broadcast-ready files, measured on the files.

Real eSpeak NG and real ffmpeg; the files are checked with mutagen, pyloudnorm and a
decode by ffmpeg, not with what the renderer says about them.
"""

import shutil
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import yaml
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode
from mutagen.oggopus import OggOpus

from audio import NoVoiceError, decode, duration_by_decoding, run_ffmpeg
from core import bulletins, rendering
from core.config import PROJECT_ROOT
from core.models import BulletinFile
from core.services import Services
from tests.conftest import settings_for
from tests.helpers import Person, make_invite

NEPALI_SUMMARY = "गजुरी बजारको धारामा तीन हप्तादेखि पानी आएको छैन। गाउँपालिकाले मर्मत सुरु गरेको छ।"


def loudness_of(path: Path) -> float:
    """Integrated loudness of a file, decoded by ffmpeg, measured by pyloudnorm."""
    segment = decode(path, 48_000, 1)
    samples = np.array(segment.get_array_of_samples(), dtype=np.float64) / 32768.0
    return float(pyloudnorm.Meter(48_000).integrated_loudness(samples))


async def report_through_chat(
    services: Services, code: str, community: str, summaries: dict[str, str]
) -> str:
    await make_invite(services, code, language="ne", community=community)
    cfa = Person(services, address=code)
    await cfa.say(f"/start {code}")
    receipt = await cfa.walk_report(
        "धाराको पानी तीन हप्तादेखि आएको छैन, गाउँपालिकालाई भनिसकियो।",
        "गजुरी बजार",
        category="service_delivery",
    )
    reference = receipt[0].text.split("NP-")[1][:11]
    await validate(services, f"NP-{reference}", summaries)
    return f"NP-{reference}"


async def validate(services: Services, reference: str, summaries: dict[str, str]) -> None:
    from sqlalchemy import select

    from core.db import utcnow
    from core.models import Report

    async with services.db.session() as session:
        report = await session.scalar(select(Report).where(Report.reference == reference))
        assert report is not None
        report.summary, report.status, report.validated_at = summaries, "validated", utcnow()


async def compose(services: Services, station: str, day: date) -> int:
    config = services.deployment.stations[station]
    async with services.db.session() as session:
        composed = await bulletins.compose(
            session, services.deployment, station, bulletins.air_time(config, day)
        )
    return composed.bulletin.id


async def test_nepali_bulletin_from_chat_reports_is_broadcast_ready(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    await report_through_chat(services, "AUD-NE", "dhading-gajuri-3", {"ne": NEPALI_SUMMARY})
    bulletin_id = await compose(services, "radio-dhading", date(2026, 12, 4))

    rendered = await rendering.render(
        services.db, services.deployment, services.settings, bulletin_id
    )

    files = {f.format: f for f in rendered[0].files}
    mp3 = services.settings.resolved_media_dir / files["mp3"].path
    assert mp3.name == "radio-dhading-2026-12-04-ne.mp3"
    info = MP3(mp3).info
    assert info.bitrate_mode == BitrateMode.CBR and info.bitrate == 128_000
    assert info.sample_rate == 44_100
    assert abs(loudness_of(mp3) - (-23.0)) <= 1.0
    assert files["mp3"].true_peak_dbtp <= -1.0
    assert abs(info.length - duration_by_decoding(mp3)) < 0.1
    assert info.length > 10 and files["mp3"].duration_s == pytest.approx(info.length, abs=0.05)
    tags = ID3(mp3)
    assert tags["TPE1"].text[0] == "Radio Dhading 104.6 MHz"
    assert tags["TALB"].text[0] == "नागरिक सहायता कक्ष" and tags["TLAN"].text[0] == "nep"
    assert str(tags["TDRC"].text[0]) == "2026-12-04"
    opus = services.settings.resolved_media_dir / files["opus"].path
    assert OggOpus(opus).info.channels == 1 and files["opus"].size < 1_000_000
    assert rendered[0].engines and set(rendered[0].engines) == {"espeak"}


@pytest.fixture
async def west_africa(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Services]:
    """The sample deployment plus a French and Bambara station at -16 LUFS."""
    content = tmp_path / "content"
    shutil.copytree(PROJECT_ROOT / "content", content)
    stations = yaml.safe_load((content / "stations.yaml").read_text(encoding="utf-8"))
    stations["stations"].append(
        {
            "code": "radio-kayes",
            "name": "Radio Kayes",
            "timezone": "Africa/Bamako",
            "languages": ["fr", "en", "bm"],
            "communities": ["banke-kohalpur-7"],
            "programme": {"fr": "Guichet citoyen", "en": "Citizen Helpdesk", "bm": "Guichet"},
            "audio": {"target_lufs": -16, "max_duration_s": 300},
        }
    )
    (content / "stations.yaml").write_text(
        yaml.safe_dump(stations, allow_unicode=True), encoding="utf-8"
    )
    template = (content / "bulletins" / "fr.yaml").read_text(encoding="utf-8")
    (content / "bulletins" / "bm.yaml").write_text(template, encoding="utf-8")

    services = Services.build(settings_for(sqlite_url, tmp_path, content_dir=content))
    await services.sync_content()
    yield services
    await services.close()


SUMMARIES = {
    "fr": "Le forage de Kohalpur est réparé et l'eau coule de nouveau.",
    "en": "The Kohalpur borehole is repaired and water flows again.",
    "bm": "Kohalpur kɔlɔn dilannen don.",
}


async def test_bambara_needs_a_recording_and_renders_with_one(
    west_africa: Services, tmp_path: Path
) -> None:
    await report_through_chat(west_africa, "AUD-FR", "banke-kohalpur-7", SUMMARIES)
    bulletin_id = await compose(west_africa, "radio-kayes", date(2026, 12, 5))

    with pytest.raises(NoVoiceError) as refused:
        await rendering.render(
            west_africa.db, west_africa.deployment, west_africa.settings, bulletin_id
        )
    assert "Bambara" in str(refused.value) and "record" in str(refused.value).lower()

    reading = tmp_path / "reading.ogg"
    espeak = shutil.which("espeak-ng")
    assert espeak is not None
    wav = tmp_path / "reading.wav"
    import subprocess

    subprocess.run([espeak, "-v", "fr", "-w", str(wav), SUMMARIES["bm"]], check=True)
    run_ffmpeg(["-y", "-i", str(wav), "-c:a", "libopus", "-b:a", "24k", str(reading)])
    async with west_africa.db.session() as session:
        stored = west_africa.settings.resolved_media_dir / "recordings" / "reading.ogg"
        stored.parent.mkdir(parents=True)
        shutil.copy(reading, stored)
        await bulletins.save_recording(
            session,
            bulletin_id,
            "bm",
            path="recordings/reading.ogg",
            mime_type="audio/ogg",
            source="upload",
        )

    rendered = await rendering.render(
        west_africa.db, west_africa.deployment, west_africa.settings, bulletin_id
    )

    by_language = {r.language: r for r in rendered}
    assert set(by_language["bm"].engines) == {"recorded"}
    assert set(by_language["fr"].engines) == {"espeak"}
    for language in ("fr", "en", "bm"):
        mp3 = next(f for f in by_language[language].files if f.format == "mp3")
        path = west_africa.settings.resolved_media_dir / mp3.path
        assert abs(loudness_of(path) - (-16.0)) <= 1.0, language
        assert mp3.true_peak_dbtp <= -1.0


async def test_a_script_longer_than_the_slot_is_refused_with_the_items_that_overrun(
    west_africa: Services,
) -> None:
    await report_through_chat(west_africa, "AUD-LONG", "banke-kohalpur-7", SUMMARIES)
    bulletin_id = await compose(west_africa, "radio-kayes", date(2026, 12, 5))
    long_text = " ".join(["Annonce importante pour toute la communauté de Kohalpur."] * 150)
    async with west_africa.db.session() as session:
        await bulletins.add_announcement(
            session, west_africa.deployment, bulletin_id, "fr", long_text
        )

    with pytest.raises(rendering.BulletinTooLong) as refused:
        await rendering.render(
            west_africa.db, west_africa.deployment, west_africa.settings, bulletin_id
        )

    assert refused.value.language == "fr"
    assert refused.value.over[0][0] == 3
    assert "300 s" in str(refused.value)
    async with west_africa.db.session() as session:
        from sqlalchemy import func, select

        assert await session.scalar(select(func.count()).select_from(BulletinFile)) == 0
