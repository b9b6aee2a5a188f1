"""Fixtures for the audio tests: settings in a temporary folder, real eSpeak NG and
ffmpeg, short clips in the formats bulletins meet, and Google faked at the HTTP layer.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import responses

from audio.ffmpeg import run_ffmpeg
from audio.pcm import from_samples, wav_bytes
from audio.voices import Voices
from core.config import PROJECT_ROOT, Settings

JINGLES = PROJECT_ROOT / "content" / "jingles"


def audio_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for one test: its own data folder (and so TTS cache), no backoff waits."""
    values: dict[str, object] = {"gtts_backoff_s": 0.0, "gtts_attempts": 3}
    values.update(overrides)
    return Settings(_env_file=None, data_dir=data_dir, **values)


def tone(path: Path, *, seconds: float, freq: float, rate: int, codec: list[str]) -> Path:
    """Write a sine tone at -12 dBFS with ffmpeg, in the codec and rate given."""
    t = np.arange(round(seconds * rate)) / rate
    samples = (0.25 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[:, None]
    pcm = wav_bytes(from_samples(samples, rate))
    run_ffmpeg(["-f", "wav", "-i", "pipe:0", *codec, str(path)], input_bytes=pcm)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """eSpeak NG only, as a deployment starts."""
    return audio_settings(tmp_path / "var")


@pytest.fixture
def voices(settings: Settings) -> Voices:
    return Voices(settings)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def voice_note(tmp_path: Path) -> Path:
    """A 1.5 s OGG Opus voice note (48 kHz mono, as Telegram sends them) of a 440 Hz tone."""
    codec = ["-c:a", "libopus", "-b:a", "24k", "-ac", "1", "-f", "ogg"]
    return tone(tmp_path / "note.ogg", seconds=1.5, freq=440.0, rate=48_000, codec=codec)


@pytest.fixture(scope="session")
def google_mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What Google's TTS sends: a 24 kHz mono MP3 (here of a 1 s tone)."""
    folder = tmp_path_factory.mktemp("google")
    codec = ["-c:a", "libmp3lame", "-b:a", "32k", "-ac", "1", "-f", "mp3"]
    return tone(folder / "g.mp3", seconds=1.0, freq=300.0, rate=24_000, codec=codec).read_bytes()


@pytest.fixture
def google() -> Iterator[responses.RequestsMock]:
    """Google's HTTP, faked; a test adds the answers it expects, in order."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
