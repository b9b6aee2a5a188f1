"""Loudness as EBU R128 / ITU-R BS.1770 measure it, and bringing a mix to a target.

Stations air bulletins next to music and each other's programmes; a bulletin 6 LU too
quiet is missed and one with inter-sample peaks over 0 dBFS distorts after MP3 encoding.
So we measure integrated loudness with pyloudnorm's BS.1770 meter and true peak on a 4x
oversampled signal, and fix both in float before anything goes back to 16-bit.
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import firwin, resample_poly

from audio.errors import AudioError
from audio.ffmpeg import AudioSegment
from audio.pcm import Samples, from_samples, to_samples
from audio.stream import ArraySource, Gained, Limited, Source, chunks, measure_source

logger = logging.getLogger(__name__)

OVERSAMPLING = 4
BLOCK_FRAMES = 1 << 14
# The interpolator reaches 6 input samples each side; 64 is a safe overlap.
BLOCK_OVERLAP = 64
GATE_BLOCK_S = 0.4
LIMITER_LOOKAHEAD_S = 0.005
LIMITER_MARGIN_DB = 0.3
LIMITER_ROUNDS = 6
LIMITER_MIN_SLOPE = 0.1
LIMITER_MAX_STEP_DB = 12.0
LIMITER_MAX_DEPTH_DB = 12.0
LIMITER_MIN_GAIN_DB = 0.1


# BS.1770-4 (Annex 2) interpolates with a 48-tap filter of 4 phases. A Kaiser low-pass of
# that length reads our speech and jingles within 0.01 dB of scipy's default 81 taps and
# of 16x oversampling, for 60% of the work.
_INTERPOLATOR = firwin(12 * OVERSAMPLING + 1, 1 / OVERSAMPLING, window=("kaiser", 5.0))
_INTERPOLATOR_32 = _INTERPOLATOR.astype(np.float32)
# No interpolated value exceeds the largest input sample by more than the largest sum of
# one phase's absolute taps: blocks below a level divided by this cannot reach it.
_OVERSHOOT_BOUND = float(
    max(np.sum(np.abs(_INTERPOLATOR[phase::OVERSAMPLING])) for phase in range(OVERSAMPLING))
    * OVERSAMPLING
)


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness (LUFS) and true peak (dBTP); ``-inf`` for silence."""

    lufs: float
    true_peak_dbtp: float


def measure(segment: AudioSegment) -> Loudness:
    """Measure a segment's integrated loudness and true peak.

    Raises:
        AudioError: when the segment is shorter than the 400 ms gating block.
    """
    return measure_stream(ArraySource(to_samples(segment), segment.frame_rate))


def measure_stream(source: Source) -> Loudness:
    """Integrated loudness and true peak of a source, in one pass over it.

    Raises:
        AudioError: when the source is shorter than the 400 ms gating block.
    """
    meter = measure_source(source)
    return Loudness(meter.integrated_lufs(), to_db(meter.true_peak()))


def integrated_lufs(samples: Samples, sample_rate: int) -> float:
    """BS.1770 integrated loudness of float samples shaped (frames, channels).

    Raises:
        AudioError: when there is less than one 400 ms gating block of audio.
    """
    if samples.shape[0] < GATE_BLOCK_S * sample_rate:
        seconds = samples.shape[0] / sample_rate
        raise AudioError(f"{seconds:.2f} s of audio is too short to measure loudness")

    # pyloudnorm's filters and gating, chunk by chunk (see audio.stream.Meter): the same
    # number as pyloudnorm.Meter.integrated_loudness, without a float64 copy of it all.
    return measure_source(ArraySource(samples, sample_rate), peak=False).integrated_lufs()


def true_peak(samples: Samples) -> float:
    """The largest absolute value of the signal oversampled 4x (linear, 1.0 = 0 dBTP)."""
    if samples.size == 0:
        return 0.0

    # The true peak is at least the sample peak, so blocks that cannot beat it are skipped.
    peak = float(np.max(np.abs(samples)))
    for _, upsampled in _oversampled_blocks(samples, floor=peak):
        if upsampled is not None:
            peak = max(peak, float(np.max(np.abs(upsampled))))
    return peak


def normalize(segment: AudioSegment, target_lufs: float, max_true_peak: float) -> AudioSegment:
    """Bring a segment to ``target_lufs`` with its true peak at or below ``max_true_peak``.

    Gain first; if peaks then exceed the ceiling, a lookahead true-peak limiter pulls
    them down and make-up gain restores the loudness, its threshold searched over a few
    rounds until both hold. Speech reaches -23 and -16 LUFS under -1 dBTP easily; a
    target the material cannot reach with at most 12 dB of limiting keeps the ceiling,
    comes out quieter and is logged as a warning.

    Returns:
        a 16-bit segment of the same rate and channels, within 0.5 LU of a reachable
        target and at or below the ceiling.

    Raises:
        AudioError: when the segment is silent or too short to measure.
    """
    started = time.monotonic()
    rate = segment.frame_rate
    source, final = level(ArraySource(to_samples(segment), rate), target_lufs, max_true_peak)
    result = from_samples(np.concatenate(list(chunks(source))), rate)
    logger.info(
        "normalized %.1f s to %.2f LUFS, true peak %.2f dBTP, in %.2f s",
        segment.duration_seconds,
        final.lufs,
        final.true_peak_dbtp,
        time.monotonic() - started,
    )
    return result


def level(source: Source, target_lufs: float, max_true_peak: float) -> tuple[Source, Loudness]:
    """:func:`normalize` for a source: the levelled (and if need be limited) source, and
    its loudness and true peak.

    Loudness and true peak scale exactly with a constant gain, so the result's figures
    come from the passes that chose the gain, not from one more pass over it.

    Raises:
        AudioError: when the source is silent or too short to measure.
    """
    ceiling = from_db(max_true_peak)
    meter = measure_source(source)
    measured = meter.integrated_lufs()
    if not np.isfinite(measured):
        raise AudioError("cannot normalize silence")
    gain = from_db(target_lufs - measured)
    scaled = Gained(source, gain)
    peak = meter.true_peak() * gain
    logger.debug("levelling from %.2f LUFS by %.2f dB", measured, target_lufs - measured)
    if peak <= ceiling:
        return scaled, Loudness(target_lufs, to_db(peak))
    return _limit_stream(scaled, target_lufs, ceiling)


def limit(samples: Samples, sample_rate: int, ceiling: float) -> Samples:
    """Reduce gain around every inter-sample peak above ``ceiling`` (linear).

    The gain needed at each sample (ceiling over its oversampled peak) is spread by a
    minimum filter and then smoothed by a moving average of the same width: the average
    at a peak only sees minima that include that peak, so it never exceeds the gain the
    peak needs, and the gain glides in over 5 ms before it (lookahead) and out after.
    """
    envelope = peak_envelope(samples, ceiling)
    needed = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-12))

    width = 2 * round(LIMITER_LOOKAHEAD_S * sample_rate) + 1
    gain = minimum_filter1d(needed, size=width, mode="nearest")
    gain = uniform_filter1d(gain, size=width, mode="nearest")

    limited: Samples = (samples * gain[:, None]).astype(np.float32)
    return limited


def to_db(linear: float) -> float:
    """Decibels of a linear amplitude; ``-inf`` for zero."""
    return float(20 * np.log10(linear)) if linear > 0 else float("-inf")


def from_db(db: float) -> float:
    """The linear amplitude of a level in decibels."""
    return float(10 ** (db / 20))


def _limit_stream(source: Source, target_lufs: float, ceiling: float) -> tuple[Source, Loudness]:
    # Limiting at a threshold costs some loudness, and the make-up gain that restores it
    # lifts the peaks again: the result peaks at threshold + make-up. We look for the
    # threshold where that lands just under the ceiling, by the secant method, always
    # limiting the same input so rounds never stack; each round is one pass.
    width = 2 * round(LIMITER_LOOKAHEAD_S * source.rate) + 1
    threshold = to_db(ceiling) - LIMITER_MARGIN_DB
    tried: list[tuple[float, float]] = []
    result: Source = source
    result_lufs, result_peak = target_lufs, float("inf")
    for round_ in range(LIMITER_ROUNDS):
        meter = measure_source(Limited(source, from_db(threshold), width))
        makeup = target_lufs - meter.integrated_lufs()
        result = Gained(Limited(source, from_db(threshold), width), from_db(makeup))
        result_lufs, result_peak = target_lufs, meter.true_peak() * from_db(makeup)
        excess = to_db(result_peak) - to_db(ceiling)
        logger.debug(
            "limiter round %d: threshold %.2f dBTP, excess %.2f dB", round_, threshold, excess
        )
        if excess <= 0:
            return result, Loudness(result_lufs, to_db(result_peak))
        if tried and tried[-1][1] - excess < LIMITER_MIN_GAIN_DB:
            # Limiting harder no longer helps: the material cannot be this loud under
            # this ceiling (speech bottoms out around 10 dB from peak to loudness).
            break

        tried.append((threshold, excess))
        # Past 12 dB of gain reduction a limiter pumps audibly; better a quieter bulletin.
        threshold = max(_next_threshold(tried), to_db(ceiling) - LIMITER_MAX_DEPTH_DB)
        if threshold == tried[-1][0]:
            break

    scale = ceiling / result_peak * from_db(-0.05)
    delivered = result_lufs + to_db(scale)
    logger.warning(
        "%.1f LUFS is out of reach under %.1f dBTP; delivering %.2f LUFS",
        target_lufs,
        to_db(ceiling),
        delivered,
    )
    return Gained(result, scale), Loudness(delivered, to_db(result_peak * scale))


def _next_threshold(tried: list[tuple[float, float]]) -> float:
    # Lowering the threshold 1 dB lowers the final peak by less than 1 dB (the make-up
    # grows), and by less the harder we limit; the slope seen so far says by how much.
    threshold, excess = tried[-1]
    slope = 1.0
    if len(tried) > 1 and tried[-2][0] != threshold:
        before, excess_before = tried[-2]
        slope = (excess - excess_before) / (threshold - before)

    step = (excess + LIMITER_MARGIN_DB) / max(slope, LIMITER_MIN_SLOPE)
    return threshold - min(step, LIMITER_MAX_STEP_DB)


def peak_envelope(samples: Samples, floor: float) -> Samples:
    # Per input frame, the largest oversampled value around it, across channels: linked
    # gain keeps a stereo image steady. Blocks that cannot reach ``floor`` keep their
    # sample values, which are below it too.
    envelope: Samples = np.max(np.abs(samples), axis=1)
    for start, upsampled in _oversampled_blocks(samples, floor):
        if upsampled is None:
            continue
        frames = upsampled.shape[0] // OVERSAMPLING
        grouped = np.abs(upsampled[: frames * OVERSAMPLING]).reshape(frames, -1)
        envelope[start : start + frames] = grouped.max(axis=1)
    return envelope


def _oversampled_blocks(samples: Samples, floor: float) -> Iterator[tuple[int, Samples | None]]:
    # Block by block, so a ten-minute bulletin never needs four times its size in memory;
    # a block whose largest sample, times the most the interpolator can add, stays at or
    # under ``floor`` is not oversampled at all (None): it cannot matter.
    total = samples.shape[0]
    for start in range(0, total, BLOCK_FRAMES):
        stop = min(total, start + BLOCK_FRAMES)
        if float(np.max(np.abs(samples[start:stop]))) * _OVERSHOOT_BOUND <= floor:
            yield start, None
            continue

        lead = min(start, BLOCK_OVERLAP)
        tail = min(total - stop, BLOCK_OVERLAP)
        chunk = samples[start - lead : stop + tail]
        upsampled = resample_poly(chunk, OVERSAMPLING, 1, axis=0, window=_INTERPOLATOR_32)
        begin = lead * OVERSAMPLING
        yield start, upsampled[begin : begin + (stop - start) * OVERSAMPLING]
