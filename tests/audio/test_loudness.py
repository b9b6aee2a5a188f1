"""BS.1770 loudness, 4x true peak, and normalization that meets both target and ceiling."""

from pathlib import Path

import numpy as np
import pytest

from audio.engines.espeak import EspeakEngine
from audio.errors import AudioError
from audio.ffmpeg import AudioSegment, decode
from audio.loudness import limit, measure, normalize, to_db, true_peak
from audio.pcm import from_samples, to_samples

RATE = 44_100


def sine(freq: float, amplitude: float, seconds: float = 2.0, phase: float = 0.0) -> AudioSegment:
    t = np.arange(round(seconds * RATE)) / RATE
    # 10 ms fades: an abrupt start would ring in the oversampling filter.
    fades = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    samples = amplitude * fades * np.sin(2 * np.pi * freq * t + phase)
    return from_samples(samples.astype(np.float32)[:, None], RATE)


async def speech(workdir: Path) -> AudioSegment:
    text = "Hello, and welcome to the community news. Today, the new water scheme opened."
    spoken = await EspeakEngine().synthesize(text, "en", workdir)
    return decode(spoken.path, RATE, 1)


def test_a_997_hz_sine_at_minus_20_dbfs_measures_minus_23_lufs() -> None:
    # BS.1770's reference: a full-scale 997 Hz sine in one channel reads -3.01 LKFS.
    level = measure(sine(997.0, 0.1))

    assert level.lufs == pytest.approx(-23.0, abs=0.1)
    assert level.true_peak_dbtp == pytest.approx(-20.0, abs=0.1)


def test_true_peak_finds_peaks_between_samples() -> None:
    # At a quarter of the rate with a 45 degree phase, every sample sits at 0.707 of the
    # wave's peak: sample peak says -3 dB, the waveform reaches 0 dB.
    segment = sine(RATE / 4, 0.5, phase=np.pi / 4)
    samples = to_samples(segment)

    assert to_db(float(np.max(np.abs(samples)))) == pytest.approx(-9.03, abs=0.05)
    assert to_db(true_peak(samples)) == pytest.approx(-6.02, abs=0.1)


def test_the_limiter_holds_inter_sample_peaks_to_the_ceiling() -> None:
    samples = to_samples(sine(RATE / 4, 0.5, phase=np.pi / 4))

    limited = limit(samples, RATE, ceiling=0.25)

    assert true_peak(limited) <= 0.25 * 1.01


@pytest.mark.parametrize("target", [-23.0, -16.0])
async def test_normalize_hits_the_target_under_the_ceiling(target: float, workdir: Path) -> None:
    segment = await speech(workdir)

    normalized = normalize(segment, target, -1.0)

    level = measure(normalized)
    assert level.lufs == pytest.approx(target, abs=0.5)
    assert level.true_peak_dbtp <= -1.0
    assert normalized.frame_count() == segment.frame_count()


async def test_normalize_limits_hard_for_a_loud_target(workdir: Path) -> None:
    segment = await speech(workdir)

    normalized = normalize(segment, -13.0, -1.0)

    level = measure(normalized)
    assert level.lufs == pytest.approx(-13.0, abs=0.5)
    assert level.true_peak_dbtp <= -1.0


async def test_an_impossible_target_keeps_the_ceiling_and_says_so(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    segment = await speech(workdir)

    normalized = normalize(segment, -6.0, -1.0)

    assert measure(normalized).true_peak_dbtp <= -1.0
    assert "out of reach" in caplog.text


def test_silence_and_tiny_clips_cannot_be_normalized() -> None:
    with pytest.raises(AudioError, match="silence"):
        normalize(sine(440.0, 0.0), -23.0, -1.0)
    with pytest.raises(AudioError, match="too short"):
        normalize(sine(440.0, 0.1, seconds=0.2), -23.0, -1.0)
