"""The streaming pieces of the render: loading, the on-demand mix, the chunked meter."""

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from audio.engines.espeak import EspeakEngine
from audio.ffmpeg import decode, duration_by_decoding
from audio.loudness import limit, true_peak
from audio.mix import AudioPrefs, build
from audio.pcm import from_samples, to_samples, wav_bytes
from audio.stream import (
    ArraySource,
    Clip,
    Limited,
    Meter,
    chunks,
    load,
    measure_source,
    wav_seconds,
)
from tests.audio.conftest import JINGLES

RATE = 44_100
TEXT = "Hello, and welcome to the community news. Today, the new water scheme opened."


async def speech_file(workdir: Path) -> Path:
    return (await EspeakEngine().synthesize(TEXT, "en", workdir)).path


@pytest.mark.parametrize("chunk", [997, 4_410, 131_072])
async def test_the_chunked_meter_reads_what_pyloudnorm_reads(workdir: Path, chunk: int) -> None:
    # It reuses pyloudnorm's K-weighting filters and gating, fed in pieces of any size.
    samples = load(await speech_file(workdir), RATE, 1)
    meter = Meter(RATE, 1)
    for start in range(0, samples.shape[0], chunk):
        meter.feed(samples[start : start + chunk])

    expected = pyloudnorm.Meter(RATE).integrated_loudness(samples[:, 0].astype(np.float64))
    assert meter.integrated_lufs() == pytest.approx(expected, abs=0.05)
    assert meter.true_peak() == pytest.approx(true_peak(samples), rel=1e-5)
    assert meter.frames == samples.shape[0]


def test_the_chunked_meter_reads_stereo_and_jingles_as_pyloudnorm() -> None:
    samples = load(JINGLES / "intro.ogg", 48_000, 2)
    samples[:, 1] *= 0.5

    meter = measure_source(ArraySource(samples, 48_000))

    expected = pyloudnorm.Meter(48_000).integrated_loudness(samples.astype(np.float64))
    assert meter.integrated_lufs() == pytest.approx(expected, abs=0.05)


async def test_an_espeak_wav_is_read_directly_at_the_mix_rate(workdir: Path) -> None:
    path = await speech_file(workdir)

    direct = load(path, RATE, 1)

    by_ffmpeg = to_samples(decode(path, RATE, 1))
    assert direct.shape[0] == pytest.approx(by_ffmpeg.shape[0], abs=2)
    assert wav_seconds(path) == pytest.approx(duration_by_decoding(path), abs=0.002)
    assert direct.shape[0] / RATE == pytest.approx(wav_seconds(path), abs=1e-6)


async def test_the_timeline_renders_any_range_as_the_whole(workdir: Path) -> None:
    prefs = AudioPrefs(pause_ms=300)
    path = await speech_file(workdir)
    timeline = build(
        [path, path], prefs, JINGLES / "intro.ogg", JINGLES / "outro.ogg", JINGLES / "bed.ogg"
    )
    whole = np.concatenate(list(chunks(timeline)))

    for start, stop in [(0, 10), (5_000, 200_000), (timeline.frames - 777, timeline.frames)]:
        np.testing.assert_array_equal(timeline.read(start, stop), whole[start:stop])
    assert whole.shape[0] == timeline.frames


async def test_the_limiter_gives_the_same_gain_chunk_by_chunk(workdir: Path) -> None:
    samples = load(await speech_file(workdir), RATE, 1) * np.float32(4.0)
    ceiling, width = 0.5, 2 * round(0.005 * RATE) + 1

    chunked = np.concatenate(
        list(chunks(Limited(ArraySource(samples, RATE), ceiling, width), 3_001))
    )

    np.testing.assert_allclose(chunked, limit(samples, RATE, ceiling), atol=1e-6)


@pytest.mark.parametrize(("rate", "channels"), [(24_000, 1), (22_050, 2), (44_100, 1)])
def test_a_wav_clip_plays_as_long_as_it_says_at_any_rate(
    tmp_path: Path, rate: int, channels: int
) -> None:
    samples = (0.1 * np.sin(np.arange(rate + 123) / 7.0)).astype(np.float32)[:, None]
    path = tmp_path / "clip.wav"
    path.write_bytes(wav_bytes(from_samples(np.repeat(samples, channels, axis=1), rate)))

    clip = Clip.read(path, 44_100, 1)

    assert clip.render().shape == (clip.frames, 1)
    assert clip.frames / 44_100 == pytest.approx((rate + 123) / rate, abs=1 / rate)
