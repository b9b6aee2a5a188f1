"""ffmpeg: found without ffprobe, decoding any input to the rate and channels asked."""

from pathlib import Path

import pytest

from audio.errors import AudioError, FfmpegError
from audio.ffmpeg import decode, duration_by_decoding, find_ffmpeg, run_ffmpeg
from tests.audio.conftest import JINGLES, tone


def test_ffmpeg_is_found_without_a_system_install() -> None:
    assert Path(find_ffmpeg()).is_file()


@pytest.mark.parametrize(
    ("name", "rate", "codec"),
    [
        ("tts.wav", 22_050, ["-c:a", "pcm_s16le", "-f", "wav"]),
        ("gtts.mp3", 24_000, ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"]),
        ("jingle.wav", 48_000, ["-c:a", "pcm_s16le", "-ac", "2", "-f", "wav"]),
        ("note.ogg", 48_000, ["-c:a", "libopus", "-b:a", "24k", "-f", "ogg"]),
    ],
)
def test_decode_converts_any_input_to_the_rate_and_channels_asked(
    tmp_path: Path, name: str, rate: int, codec: list[str]
) -> None:
    path = tone(tmp_path / name, seconds=1.0, freq=500.0, rate=rate, codec=codec)

    segment = decode(path, 44_100, 1)

    assert (segment.frame_rate, segment.channels, segment.sample_width) == (44_100, 1, 2)
    # Lossy codecs add or trim a few ms at the edges; a wrong rate would be off by 8-100%.
    assert segment.duration_seconds == pytest.approx(1.0, abs=0.03)
    assert duration_by_decoding(path) == pytest.approx(1.0, abs=0.03)


def test_decode_keeps_stereo_when_asked() -> None:
    segment = decode(JINGLES / "intro.ogg", 48_000, 2)

    assert (segment.frame_rate, segment.channels) == (48_000, 2)


def test_a_file_ffmpeg_cannot_read_raises_with_its_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"this is not audio" * 20)

    with pytest.raises(FfmpegError) as raised:
        decode(broken, 44_100, 1)

    assert raised.value.returncode not in (0, None)
    assert raised.value.stderr
    assert str(broken) in " ".join(raised.value.command)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"missing\.wav"):
        decode(tmp_path / "missing.wav", 44_100, 1)


def test_run_ffmpeg_reports_bad_arguments() -> None:
    with pytest.raises(FfmpegError, match="exited with"):
        run_ffmpeg(["-f", "nonsense-format", "-i", "pipe:0", "-f", "null", "-"], input_bytes=b"")
