"""Choosing the voice: recordings first, the configured order, fallback, never a wrong voice."""

import logging
from pathlib import Path

import pytest
import responses

from audio.errors import AudioError, NoVoiceError
from audio.voices import Voices
from tests.audio.conftest import audio_settings
from tests.fakes.google_tts import answer_empty, answer_rate_limited, answer_speech

GTTS_FIRST = {"ne": ["gtts", "espeak"], "fr": ["gtts", "espeak"]}


async def test_the_default_order_speaks_nepali_with_espeak(voices: Voices, workdir: Path) -> None:
    speech = await voices.speak("नमस्ते", "ne", workdir)

    assert (speech.engine, speech.language) == ("espeak", "ne")


async def test_gtts_speaks_first_where_configured(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock, google_mp3: bytes
) -> None:
    answer_speech(google, google_mp3)
    voices = Voices(audio_settings(tmp_path, tts_order=GTTS_FIRST))

    speech = await voices.speak("नमस्ते", "ne", workdir)

    assert speech.engine == "gtts"


async def test_429_every_time_falls_back_to_espeak_and_says_so(
    tmp_path: Path,
    workdir: Path,
    google: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer_rate_limited(google)
    voices = Voices(audio_settings(tmp_path, tts_order=GTTS_FIRST))

    with caplog.at_level(logging.INFO, logger="audio"):
        speech = await voices.speak("Bonjour à tous", "fr", workdir)

    assert speech.engine == "espeak"
    assert len(google.calls) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("gtts failed" in message and "429" in message for message in warnings)
    assert any("spoken by espeak" in r.getMessage() for r in caplog.records)


async def test_an_empty_answer_is_retried_then_falls_back(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock
) -> None:
    answer_empty(google)
    voices = Voices(audio_settings(tmp_path, tts_order=GTTS_FIRST, gtts_attempts=2))

    speech = await voices.speak("Bonjour", "fr", workdir)

    assert len(google.calls) == 2
    assert speech.engine == "espeak"


async def test_bambara_with_only_espeak_raises_a_clear_no_voice_error(
    voices: Voices, workdir: Path
) -> None:
    with pytest.raises(NoVoiceError) as raised:
        await voices.speak("I ni ce, kunnafoni ye nin ye.", "bm", workdir)

    assert raised.value.tried == ["espeak"]
    assert str(raised.value) == (
        "No text-to-speech engine speaks Bambara (bm) here (tried: espeak). "
        "Record this bulletin in Bambara instead."
    )


async def test_gtts_configured_for_bambara_is_not_asked_and_never_falls_to_french(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock
) -> None:
    voices = Voices(audio_settings(tmp_path, tts_order={"bm": ["gtts", "espeak"]}))

    with pytest.raises(NoVoiceError, match=r"tried: gtts, espeak"):
        await voices.speak("I ni ce", "bm", workdir)

    assert len(google.calls) == 0


async def test_a_recording_comes_before_every_engine(
    voices_with_recording: Voices, voice_note: Path, workdir: Path
) -> None:
    speech = await voices_with_recording.speak("I ni ce", "bm", workdir)

    assert (speech.engine, speech.path) == ("recorded", voice_note)


async def test_a_regional_tag_uses_its_language_voice(voices: Voices, workdir: Path) -> None:
    speech = await voices.speak("Bonjour", "fr_CA", workdir)

    assert (speech.engine, speech.language) == ("espeak", "fr-ca")


def test_available_lists_the_engines_per_language(tmp_path: Path, voice_note: Path) -> None:
    voices = Voices(
        audio_settings(tmp_path, tts_order={"ne": ["gtts", "espeak"]}), {"bm": voice_note}
    )

    available = voices.available()

    assert available["ne"] == ["gtts", "espeak"]
    assert available["fr"] == ["espeak"]
    assert available["bm"] == ["recorded"]
    assert "wo" not in available


def test_an_unknown_engine_name_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"HELPDESK_TTS_ORDER: unknown .*'polly' for 'ne'"):
        Voices(audio_settings(tmp_path, tts_order={"ne": ["polly", "espeak"]}))


@pytest.fixture
def voices_with_recording(tmp_path: Path, voice_note: Path) -> Voices:
    return Voices(audio_settings(tmp_path), {"bm": voice_note})
