"""Moving audio between pydub segments, float sample arrays and WAV bytes."""

import io
import logging
import wave

import numpy as np
import numpy.typing as npt

from audio.ffmpeg import AudioSegment

logger = logging.getLogger(__name__)

Samples = npt.NDArray[np.float32]
"""Audio as float32 in [-1, 1), shaped (frames, channels)."""

FULL_SCALE = 32768.0


def to_samples(segment: AudioSegment) -> Samples:
    """The segment's audio as float32, shaped (frames, channels), full scale at 1.0."""
    if segment.sample_width != 2:
        segment = segment.set_sample_width(2)

    pcm = np.frombuffer(segment.raw_data, dtype="<i2").reshape(-1, segment.channels)
    return (pcm.astype(np.float32) / FULL_SCALE).astype(np.float32)


def from_samples(samples: Samples, sample_rate: int) -> AudioSegment:
    """A 16-bit segment from float samples shaped (frames, channels).

    Samples beyond full scale are clipped (and logged): callers leave headroom first.
    """
    scaled = np.round(samples.astype(np.float64) * FULL_SCALE)
    clipped = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    if clipped:
        logger.warning("clipped %d samples converting to 16-bit", clipped)

    pcm = np.clip(scaled, -32768, 32767).astype("<i2")
    return AudioSegment(
        data=pcm.tobytes(), sample_width=2, frame_rate=sample_rate, channels=samples.shape[1]
    )


def wav_bytes(segment: AudioSegment) -> bytes:
    """The segment as a complete WAV file in memory, for feeding ffmpeg through a pipe."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(segment.channels)
        out.setsampwidth(segment.sample_width)
        out.setframerate(segment.frame_rate)
        out.writeframes(segment.raw_data)
    return buffer.getvalue()


def silence(seconds: float, sample_rate: int, channels: int) -> Samples:
    """Digital silence of the given length."""
    return np.zeros((round(seconds * sample_rate), channels), dtype=np.float32)
