"""gTTS against a fake Google: caching, backing off on 429 and empty answers."""

import time
from pathlib import Path

import pytest
import responses

from audio.engines.gtts import GttsEngine
from audio.errors import EngineError
from audio.ffmpeg import duration_by_decoding
from tests.fakes.google_tts import answer_empty, answer_rate_limited, answer_speech


def engine(tmp_path: Path, attempts: int = 3) -> GttsEngine:
    return GttsEngine(tmp_path / "cache", attempts=attempts, backoff_s=0.0)


def test_gtts_speaks_its_own_languages_only(tmp_path: Path) -> None:
    languages = engine(tmp_path).languages()

    assert {"ne", "fr", "en", "fr-ca"} <= languages
    assert "bm" not in languages


async def test_speech_is_cached_so_a_second_call_asks_nobody(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock, google_mp3: bytes
) -> None:
    answer_speech(google, google_mp3)
    tts = engine(tmp_path)

    first = await tts.synthesize("नमस्ते", "ne", workdir)
    second = await GttsEngine(tmp_path / "cache").synthesize("नमस्ते", "ne", workdir)

    assert len(google.calls) == 1
    assert first.path == second.path
    assert first.path.parent == tmp_path / "cache"
    assert first.path.read_bytes() == google_mp3
    assert duration_by_decoding(first.path) == pytest.approx(1.0, abs=0.1)


async def test_the_cache_key_includes_language_and_text(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock, google_mp3: bytes
) -> None:
    answer_speech(google, google_mp3)
    tts = engine(tmp_path)

    paths = {
        (await tts.synthesize(text, language, workdir)).path
        for text, language in [("Bonjour", "fr"), ("Bonjour", "en"), ("Salut", "fr")]
    }

    assert len(paths) == 3
    assert len(google.calls) == 3


async def test_a_429_is_retried(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock, google_mp3: bytes
) -> None:
    answer_rate_limited(google)
    answer_speech(google, google_mp3)

    speech = await engine(tmp_path).synthesize("Bonjour", "fr", workdir)

    assert len(google.calls) == 2
    assert speech.path.read_bytes() == google_mp3


async def test_429_on_every_attempt_gives_up_after_the_configured_attempts(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock
) -> None:
    answer_rate_limited(google)

    with pytest.raises(EngineError, match="429") as raised:
        await engine(tmp_path, attempts=3).synthesize("Bonjour", "fr", workdir)

    assert len(google.calls) == 3
    assert raised.value.engine == "gtts"
    assert not list((tmp_path / "cache").glob("*.mp3"))


async def test_an_empty_answer_is_retried_and_not_cached(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock
) -> None:
    answer_empty(google)

    with pytest.raises(EngineError, match="empty"):
        await engine(tmp_path, attempts=2).synthesize("Bonjour", "fr", workdir)

    assert len(google.calls) == 2
    assert not list((tmp_path / "cache").glob("*"))


async def test_no_network_fails_at_once_without_retrying(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock
) -> None:
    # No answer registered: responses raises ConnectionError, as an offline machine does.
    with pytest.raises(EngineError, match="Failed to connect"):
        await engine(tmp_path).synthesize("Bonjour", "fr", workdir)

    assert len(google.calls) == 1


async def test_retries_back_off_doubling_from_the_configured_wait(
    tmp_path: Path, workdir: Path, google: responses.RequestsMock
) -> None:
    answer_rate_limited(google)
    tts = GttsEngine(tmp_path / "cache", attempts=3, backoff_s=0.05)
    started = time.monotonic()

    with pytest.raises(EngineError):
        await tts.synthesize("Bonjour", "fr", workdir)

    # 0.05 s after the first 429, 0.10 s after the second.
    assert time.monotonic() - started >= 0.15
