"""Recorded voice: the recording for the language, whatever the text."""

from pathlib import Path

import pytest

from audio.engines.recorded import RecordedEngine
from audio.errors import EngineError


async def test_the_recording_is_returned_for_its_language(voice_note: Path, workdir: Path) -> None:
    engine = RecordedEngine({"BM": voice_note})

    speech = await engine.synthesize("any text", "bm", workdir)

    assert engine.languages() == {"bm"}
    assert (speech.path, speech.engine, speech.language) == (voice_note, "recorded", "bm")


async def test_no_recording_for_a_language_is_an_engine_error(
    voice_note: Path, workdir: Path
) -> None:
    with pytest.raises(EngineError, match="no recording"):
        await RecordedEngine({"bm": voice_note}).synthesize("text", "wo", workdir)


async def test_a_recording_that_was_deleted_is_an_engine_error(
    tmp_path: Path, workdir: Path
) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        await RecordedEngine({"bm": tmp_path / "gone.ogg"}).synthesize("text", "bm", workdir)
