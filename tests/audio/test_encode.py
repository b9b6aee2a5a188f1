"""The delivered files, read back: MP3 CBR with tags, OGG Opus voice, WAV, all measured."""

import hashlib
import struct
from datetime import date
from pathlib import Path

import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode
from mutagen.oggopus import OggOpus

from audio.encode import Tags, write_mp3, write_opus, write_wav
from audio.engines.espeak import EspeakEngine
from audio.ffmpeg import AudioSegment, decode, duration_by_decoding
from audio.loudness import measure, normalize
from audio.mix import AudioPrefs

TAGS = Tags(
    title="साप्ताहिक समाचार",
    artist="Radio Gajuri",
    album="Citizen Helpdesk",
    language="ne",
    air_date=date(2025, 3, 14),
)
TEXT = "नमस्ते। गजुरी गाउँपालिकामा नयाँ खानेपानी योजना सुरु भयो।"


async def bulletin(workdir: Path, target: float = -23.0) -> AudioSegment:
    speech = await EspeakEngine().synthesize(TEXT, "ne", workdir)
    return normalize(decode(speech.path, 44_100, 1), target, -1.5)


@pytest.mark.parametrize("target", [-23.0, -16.0])
async def test_the_written_mp3_plays_at_the_target_under_the_ceiling(
    target: float, workdir: Path, tmp_path: Path
) -> None:
    prefs = AudioPrefs(target_lufs=target)

    rendered = write_mp3(await bulletin(workdir, target), tmp_path / "b.mp3", prefs, TAGS)

    # Measured again here, from the file, independently of what write_mp3 reported.
    level = measure(decode(rendered.path, 44_100, 1))
    assert level.lufs == pytest.approx(target, abs=1.0)
    assert level.true_peak_dbtp <= -1.0
    assert (rendered.lufs, rendered.true_peak_dbtp) == pytest.approx(
        (level.lufs, level.true_peak_dbtp), abs=0.01
    )


async def test_the_mp3_is_constant_bitrate_128k_at_44_1_khz(workdir: Path, tmp_path: Path) -> None:
    rendered = write_mp3(await bulletin(workdir), tmp_path / "b.mp3", AudioPrefs(), TAGS)

    info = MP3(rendered.path).info
    assert info.bitrate_mode == BitrateMode.CBR
    assert info.bitrate == pytest.approx(128_000, abs=500)
    assert (info.sample_rate, info.channels) == (44_100, 1)
    assert rendered.duration_s == pytest.approx(info.length)
    assert duration_by_decoding(rendered.path) == pytest.approx(info.length, abs=0.1)


async def test_the_mp3_tags_read_back(workdir: Path, tmp_path: Path) -> None:
    rendered = write_mp3(await bulletin(workdir), tmp_path / "b.mp3", AudioPrefs(), TAGS)

    tags = ID3(rendered.path)
    assert tags.version[:2] == (2, 3)
    assert tags["TIT2"].text == ["साप्ताहिक समाचार"]
    assert tags["TPE1"].text == ["Radio Gajuri"]
    assert tags["TALB"].text == ["Citizen Helpdesk"]
    assert tags["TLAN"].text == ["nep"]
    assert str(tags["TDRC"].text[0]) == "2025-03-14"


async def test_the_report_matches_the_file(workdir: Path, tmp_path: Path) -> None:
    rendered = write_mp3(await bulletin(workdir), tmp_path / "b.mp3", AudioPrefs(), TAGS)

    assert rendered.format == "mp3"
    assert rendered.size == rendered.path.stat().st_size
    assert rendered.sha256 == hashlib.sha256(rendered.path.read_bytes()).hexdigest()
    assert not list(tmp_path.glob("*.part"))


async def test_the_opus_voice_message_is_mono_48k_and_small(workdir: Path, tmp_path: Path) -> None:
    segment = await bulletin(workdir)

    rendered = write_opus(segment, tmp_path / "b.ogg", TAGS)

    opus = OggOpus(rendered.path)
    assert opus.info.channels == 1
    assert opus.tags["TITLE"] == ["साप्ताहिक समाचार"]
    assert _opus_input_rate(rendered.path) == 48_000
    assert decode(rendered.path, 48_000, 1).duration_seconds == pytest.approx(
        segment.duration_seconds, abs=0.05
    )
    assert rendered.duration_s == pytest.approx(segment.duration_seconds, abs=0.05)
    # 32 kbit/s plus Ogg framing: a ten-minute bulletin stays near 2.4 MB, far from 16 MB.
    assert rendered.size * 8 / rendered.duration_s < 36_000
    assert rendered.lufs == pytest.approx(-23.0, abs=0.5)


async def test_the_wav_is_48k_16_bit_pcm(workdir: Path, tmp_path: Path) -> None:
    segment = await bulletin(workdir)

    rendered = write_wav(segment, tmp_path / "b.wav")

    header = rendered.path.read_bytes()[:44]
    channels, rate = struct.unpack_from("<HI", header, 22)
    bits = struct.unpack_from("<H", header, 34)[0]
    assert (channels, rate, bits) == (1, 48_000, 16)
    assert rendered.duration_s == pytest.approx(segment.duration_seconds, abs=0.001)
    assert rendered.lufs == pytest.approx(-23.0, abs=0.1)


def _opus_input_rate(path: Path) -> int:
    # OpusHead, in the first Ogg page: magic (8), version (1), channels (1), pre-skip (2),
    # then the input sample rate (4, little endian).
    data = path.read_bytes()
    head = data.index(b"OpusHead")
    rate: int = struct.unpack_from("<I", data, head + 12)[0]
    return rate
