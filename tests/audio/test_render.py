"""A whole bulletin: speak, check the slot, mix, level, and write every format."""

from pathlib import Path

import pytest

from audio.encode import Tags
from audio.errors import AudioError, NoVoiceError
from audio.ffmpeg import duration_by_decoding
from audio.mix import AudioPrefs
from audio.render import ProgramItem, estimate, fit, render_program
from audio.voices import Voices
from tests.audio.conftest import JINGLES, audio_settings

TAGS = Tags(title="Bulletin", artist="Radio Dhading", album="Helpdesk", language="ne")
ITEMS = [
    ProgramItem("नमस्ते। आजको समाचार।", "ne"),
    ProgramItem("Bonjour à tous.", "fr"),
    ProgramItem("Hello everyone.", "en"),
]


async def test_a_bulletin_renders_to_mp3_and_opus_with_jingles_and_bed(
    voices: Voices, workdir: Path, tmp_path: Path
) -> None:
    result = await render_program(
        ITEMS,
        AudioPrefs(),
        voices=voices,
        workdir=workdir,
        out_dir=tmp_path / "out",
        basename="b-2025-03-14",
        tags=TAGS,
        intro=JINGLES / "intro.ogg",
        outro=JINGLES / "outro.ogg",
        bed=JINGLES / "bed.ogg",
    )

    assert [f.path.name for f in result.files] == ["b-2025-03-14.mp3", "b-2025-03-14.ogg"]
    assert result.engines == ["espeak", "espeak", "espeak"]
    expected = (
        duration_by_decoding(JINGLES / "intro.ogg")
        + sum(result.speech_seconds)
        + duration_by_decoding(JINGLES / "outro.ogg")
        + 4 * 0.7
    )
    for rendered in result.files:
        assert rendered.duration_s == pytest.approx(expected, abs=0.1)
        assert rendered.lufs == pytest.approx(-23.0, abs=0.5)
    assert result.files[0].true_peak_dbtp <= -1.0


async def test_wav_is_added_when_the_station_wants_it(
    voices: Voices, workdir: Path, tmp_path: Path
) -> None:
    result = await render_program(
        ITEMS[:1],
        AudioPrefs(wav=True, target_lufs=-16.0),
        voices=voices,
        workdir=workdir,
        out_dir=tmp_path,
        basename="b",
        tags=TAGS,
    )

    assert [f.format for f in result.files] == ["mp3", "opus", "wav"]
    assert [f.lufs for f in result.files] == pytest.approx([-16.0] * 3, abs=0.5)


async def test_a_bambara_item_without_a_recording_is_refused(
    voices: Voices, workdir: Path, tmp_path: Path
) -> None:
    items = [*ITEMS[:1], ProgramItem("I ni ce, kunnafoni ye nin ye.", "bm")]

    with pytest.raises(NoVoiceError, match=r"Record this bulletin in Bambara instead"):
        await render_program(
            items,
            AudioPrefs(),
            voices=voices,
            workdir=workdir,
            out_dir=tmp_path,
            basename="b",
            tags=TAGS,
        )

    assert not list(tmp_path.glob("b.*"))


async def test_a_bambara_item_with_a_recording_renders(
    tmp_path: Path, workdir: Path, voice_note: Path
) -> None:
    voices = Voices(audio_settings(tmp_path / "var"), {"bm": voice_note})
    items = [ProgramItem("I ni ce, kunnafoni ye nin ye.", "bm"), *ITEMS[2:]]

    result = await render_program(
        items,
        AudioPrefs(),
        voices=voices,
        workdir=workdir,
        out_dir=tmp_path / "out",
        basename="b",
        tags=TAGS,
    )

    assert result.engines == ["recorded", "espeak"]
    assert result.speech_seconds[0] == pytest.approx(1.5, abs=0.03)
    assert all(f.path.is_file() for f in result.files)


async def test_estimate_and_fit_name_the_items_over_the_slot(
    voices: Voices, workdir: Path
) -> None:
    seconds = await estimate(ITEMS, voices, workdir)
    slot = seconds[0] + 0.7 + seconds[1] + 0.1

    over = fit(seconds, AudioPrefs(max_duration_s=slot, pause_ms=700))

    assert all(s > 0.5 for s in seconds)
    assert over == [2]


def test_fit_counts_jingles_and_pauses() -> None:
    prefs = AudioPrefs(max_duration_s=30.0, pause_ms=1000)

    # 3 + 1 + 10 + 1 + 10 = 25 s, then the third item would end at 36 s.
    assert fit([10.0, 10.0, 10.0], prefs, intro_s=3.0) == [2]
    # 3 + 1 + 10 + 1 + 10, then a pause and a 4 s outro: 30 s, one over a 29 s slot.
    tight = AudioPrefs(max_duration_s=29.0, pause_ms=1000)
    assert fit([10.0, 10.0], tight, intro_s=3.0, outro_s=4.0) == [1]
    assert fit([10.0, 10.0, 9.0], AudioPrefs(max_duration_s=31.0, pause_ms=1000)) == []
    assert fit([100.0], AudioPrefs()) == []


async def test_render_refuses_a_programme_longer_than_the_slot(
    voices: Voices, workdir: Path, tmp_path: Path
) -> None:
    prefs = AudioPrefs(max_duration_s=2.0)

    with pytest.raises(AudioError, match=r"items .* do not fit in 2 s"):
        await render_program(
            ITEMS,
            prefs,
            voices=voices,
            workdir=workdir,
            out_dir=tmp_path,
            basename="b",
            tags=TAGS,
        )

    assert not list(tmp_path.glob("b.*"))


async def test_an_empty_item_is_refused_before_anything_is_spoken(
    voices: Voices, workdir: Path, tmp_path: Path
) -> None:
    with pytest.raises(AudioError, match="item 2"):
        await estimate([ITEMS[0], ProgramItem("  ", "fr")], voices, workdir)
