"""Audio as a stream of chunks: reading pieces, a random-access mix, and BS.1770 meters.

A sixty-minute programme is 635 MB of mono float32 at 44.1 kHz (and pyloudnorm would
copy it to float64 once more), so the render never holds it whole: the mix is a
:class:`Timeline` that renders any range of frames on demand from the pieces it places,
levelling and limiting are :class:`Source` wrappers over it, and loudness and true peak
are measured by :class:`Meter`, which takes the audio chunk by chunk.

:class:`Meter` reuses pyloudnorm's own K-weighting stages (``pyloudnorm.Meter._filters``:
the same biquad coefficients and pass-band gains, cascaded into one fourth-order filter
run by ``scipy.signal.lfilter`` with its state carried from chunk to chunk) and
pyloudnorm's block boundaries and gating (BS.1770-4: 400 ms blocks every 100 ms, -70 LUFS
absolute gate, -10 LU relative gate), so it returns the number
``pyloudnorm.Meter.integrated_loudness`` does (within 1e-10 LU on speech; tested within
0.05), without a float64 copy of the whole signal.
"""

import bisect
import logging
import math
import subprocess
import tempfile
import threading
import wave
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import IO, Protocol

import numpy as np
import numpy.typing as npt
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import lfilter, resample_poly

from audio.errors import AudioError, FfmpegError
from audio.ffmpeg import find_ffmpeg, run_ffmpeg
from audio.pcm import FULL_SCALE, Samples

logger = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

CHUNK_FRAMES = 1 << 17
GATE_BLOCK_S = 0.4
GATE_OVERLAP = 0.75
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
# BS.1770 channel weights: L, R, C, Ls, Rs.
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
STDERR_TAIL_CHARS = 800


class Source(Protocol):
    """Audio that can render any range of its frames, as float32 (frames, channels)."""

    rate: int
    channels: int
    frames: int

    def read(self, start: int, stop: int) -> Samples:
        """Frames ``start`` to ``stop`` (clamped to the audio)."""
        ...


def chunks(source: Source, size: int = CHUNK_FRAMES) -> Iterator[Samples]:
    """The whole source, in order, ``size`` frames at a time."""
    for start in range(0, source.frames, size):
        yield source.read(start, min(source.frames, start + size))


class ArraySource:
    """A source over samples already in memory."""

    def __init__(self, samples: Samples, rate: int) -> None:
        self.samples = samples
        self.rate = rate
        self.channels = samples.shape[1]
        self.frames = samples.shape[0]

    def read(self, start: int, stop: int) -> Samples:
        return self.samples[max(0, start) : min(self.frames, stop)]


class Gained:
    """A source scaled by a constant gain (linear)."""

    def __init__(self, source: Source, gain: float) -> None:
        self.source = source
        self.gain = np.float32(gain)
        self.rate, self.channels, self.frames = source.rate, source.channels, source.frames

    def read(self, start: int, stop: int) -> Samples:
        scaled: Samples = self.source.read(start, stop) * self.gain
        return scaled


class Timeline:
    """Pieces placed end to end (and a looped bed under a span), rendered on demand.

    Attributes:
        spans: per placed piece, its first frame and its frame count.
    """

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self.frames = 0
        self._starts: list[int] = []
        self._pieces: list[Clip | Samples] = []
        self._bed: tuple[int, int, Clip | Samples, int, float] | None = None
        self._rendered = _Rendered()

    def append(self, piece: "Clip | Samples") -> int:
        """Place ``piece`` at the current end; returns its first frame."""
        start = self.frames
        self._starts.append(start)
        self._pieces.append(piece)
        self.frames += _frames(piece)
        return start

    def pause(self, frames: int) -> None:
        """Leave ``frames`` of silence at the end."""
        self.frames += frames

    def lay_bed(
        self, start: int, stop: int, bed: "Clip | Samples", fade: int, gain: float
    ) -> None:
        """Loop ``bed`` under frames ``start`` to ``stop``, fading in and out over ``fade``."""
        self._bed = (start, stop, bed, fade, gain)

    def read(self, start: int, stop: int) -> Samples:
        start, stop = max(0, start), min(self.frames, stop)
        out = np.zeros((max(0, stop - start), self.channels), dtype=np.float32)
        # Pieces are in order and never overlap: start from the last one beginning at or
        # before ``start``.
        begin = max(0, bisect.bisect_right(self._starts, start) - 1)
        for first, piece in zip(self._starts[begin:], self._pieces[begin:], strict=True):
            if first >= stop:
                break
            last = first + _frames(piece)
            if last <= start:
                continue
            lo, hi = max(start, first), min(stop, last)
            out[lo - start : hi - start] = self._rendered.get(piece)[lo - first : hi - first]
        if self._bed is not None:
            self._add_bed(out, start, stop)
        return out

    def _add_bed(self, out: Samples, start: int, stop: int) -> None:
        assert self._bed is not None
        bed_start, bed_stop, clip, fade, gain = self._bed
        bed = self._rendered.get(clip)
        lo, hi = max(start, bed_start), min(stop, bed_stop)
        if lo >= hi:
            return
        length = bed_stop - bed_start
        offsets = np.arange(lo - bed_start, hi - bed_start)
        envelope = np.ones(offsets.size, dtype=np.float32)
        if fade:
            step = 1.0 / (fade - 1) if fade > 1 else 0.0
            rising = offsets < fade
            envelope[rising] = offsets[rising] * step
            falling = offsets >= length - fade
            envelope[falling] = (length - 1 - offsets[falling]) * step
        looped = bed[offsets % bed.shape[0]]
        out[lo - start : hi - start] += looped * (envelope * np.float32(gain))[:, None]


def _frames(piece: "Clip | Samples") -> int:
    frames: int = piece.shape[0] if isinstance(piece, np.ndarray) else piece.frames
    return frames


class Limited:
    """A source with gain pulled down around every inter-sample peak over ``ceiling``.

    The same limiter as :func:`audio.loudness.limit`, computed per range: the gain at a
    frame depends only on the oversampled peaks within one filter width of it, so each
    range is rendered from the source extended by that width (and the interpolator's
    reach), which gives the gain of the whole-signal computation.
    """

    def __init__(self, source: Source, ceiling: float, width: int) -> None:
        self.source = source
        self.ceiling = ceiling
        self.width = width
        self.rate, self.channels, self.frames = source.rate, source.channels, source.frames

    def read(self, start: int, stop: int) -> Samples:
        from audio.loudness import BLOCK_OVERLAP, peak_envelope

        start, stop = max(0, start), min(self.frames, stop)
        lo, hi = max(0, start - self.width), min(self.frames, stop + self.width)
        ext_lo, ext_hi = max(0, lo - BLOCK_OVERLAP), min(self.frames, hi + BLOCK_OVERLAP)
        extended = self.source.read(ext_lo, ext_hi)
        envelope = peak_envelope(extended, self.ceiling)[lo - ext_lo : hi - ext_lo]
        needed = np.minimum(1.0, self.ceiling / np.maximum(envelope, 1e-12))
        gain = minimum_filter1d(needed, size=self.width, mode="nearest")
        gain = uniform_filter1d(gain, size=self.width, mode="nearest")
        limited: Samples = (
            extended[start - ext_lo : stop - ext_lo] * gain[start - lo : stop - lo, None]
        ).astype(np.float32)
        return limited


class Meter:
    """Integrated loudness (BS.1770-4, as pyloudnorm computes it) and 4x true peak,
    fed chunk by chunk.
    """

    def __init__(self, rate: int, channels: int, *, loudness: bool = True) -> None:
        self.rate = rate
        self.channels = channels
        self.frames = 0
        self.loudness = loudness
        self.peak = True
        self._stages = _k_weighting(rate)
        self._state = [np.zeros((len(a) - 1, channels)) for _, a, _ in self._stages]
        self._total = np.zeros(channels)
        self._points = np.zeros(0, dtype=np.int64)
        self._sums: list[Floats] = []
        self._reached = 0
        self._peak = 0.0
        self._pending = np.zeros((0, channels), dtype=np.float32)
        self._context = np.zeros((0, channels), dtype=np.float32)

    def feed(self, chunk: Samples) -> None:
        """Take the next frames, shaped (frames, channels)."""
        if chunk.shape[0] == 0:
            return
        if self.loudness:
            self._weigh(chunk)
        if self.peak:
            self._track_peak(chunk)
        self.frames += chunk.shape[0]

    def adopt_peak(self, other: "Meter") -> None:
        """Take the true peak another meter found over the same audio."""
        self._peak = other.true_peak()
        self._pending = np.zeros((0, self.channels), dtype=np.float32)
        self.peak = True

    def true_peak(self) -> float:
        """The largest 4x-oversampled absolute value seen (linear); call after the last feed."""
        if self._pending.shape[0]:
            self._peak_of(self._pending, np.zeros((0, self.channels), dtype=np.float32))
            self._context = self._pending[-_reach() :]
            self._pending = np.zeros((0, self.channels), dtype=np.float32)
        return self._peak

    def integrated_lufs(self) -> float:
        """BS.1770 gated loudness of everything fed; ``-inf`` for silence.

        Raises:
            AudioError: when less than one 400 ms gating block was fed.
        """
        if self.frames < GATE_BLOCK_S * self.rate:
            seconds = self.frames / self.rate
            raise AudioError(f"{seconds:.2f} s of audio is too short to measure loudness")

        lower, upper = _block_bounds(self.frames, self.rate)
        cumulative = self._cumulative_at(np.minimum(np.concatenate([lower, upper]), self.frames))
        count = lower.size
        z = (cumulative[count:] - cumulative[:count]) / (GATE_BLOCK_S * self.rate)
        weights = np.array(CHANNEL_WEIGHTS[: self.channels])
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10.0 * np.log10(z @ weights)
            absolute = block_lufs >= ABSOLUTE_GATE_LUFS
            if not np.any(absolute):
                return float("-inf")
            relative_gate = (
                -0.691 + 10.0 * np.log10(np.mean(z[absolute], axis=0) @ weights)
            ) + RELATIVE_GATE_LU
            gated = (block_lufs > relative_gate) & (block_lufs > ABSOLUTE_GATE_LUFS)
            if not np.any(gated):
                return float("-inf")
            return float(-0.691 + 10.0 * np.log10(np.mean(z[gated], axis=0) @ weights))

    def _weigh(self, chunk: Samples) -> None:
        filtered = chunk.astype(np.float64)
        for index, (b, a, gain) in enumerate(self._stages):
            filtered, self._state[index] = lfilter(b, a, filtered, axis=0, zi=self._state[index])
            filtered *= gain
        running = np.cumsum(np.square(filtered), axis=0)
        running += self._total
        start, stop = self.frames, self.frames + chunk.shape[0]
        # Cumulative energy at every block boundary inside this chunk (boundary p is the
        # energy of frames before p), so blocks are differences of two values.
        while self._points.size == 0 or self._points[-1] < stop:
            self._extend_points(max(stop, 2 * (int(self._points[-1]) if self._points.size else 0)))
        first = int(np.searchsorted(self._points, start, side="right"))
        last = int(np.searchsorted(self._points, stop, side="right"))
        wanted = self._points[first:last]
        self._sums.append(running[wanted - start - 1].astype(np.float64))
        self._reached = last
        self._total = running[-1].copy()

    def _extend_points(self, frames: int) -> None:
        lower, upper = _block_bounds(frames + 2 * self.rate, self.rate)
        points = np.unique(np.concatenate([lower, upper]))
        self._points = points[points > 0]

    def _cumulative_at(self, positions: Ints) -> Floats:
        known = self._points[: self._reached]
        sums = (
            np.concatenate(self._sums) if self._sums else np.zeros((0, self.channels))
        ).reshape(-1, self.channels)
        values = np.zeros((positions.size, self.channels))
        inside = (positions > 0) & (positions < self.frames)
        index = np.searchsorted(known, positions[inside])
        if index.size and np.any(known[np.minimum(index, known.size - 1)] != positions[inside]):
            raise AudioError("loudness meter: block boundary not tracked")
        values[inside] = sums[index]
        values[positions >= self.frames] = self._total
        return values

    def _track_peak(self, chunk: Samples) -> None:
        reach = _reach()
        buffer = np.concatenate([self._pending, chunk]) if self._pending.size else chunk
        if buffer.shape[0] <= reach:
            self._pending = buffer
            return
        body, tail = buffer[:-reach], buffer[-reach:]
        self._peak_of(body, tail)
        self._context = body[-reach:]
        self._pending = tail

    def _peak_of(self, body: Samples, tail: Samples) -> None:
        from audio.loudness import _OVERSHOOT_BOUND, BLOCK_FRAMES

        # Block by block as audio.loudness.true_peak does: a block whose largest sample,
        # times the most the interpolator can add, cannot beat the peak so far is skipped.
        reach = _reach()
        tops = [
            float(np.max(np.abs(body[start : start + BLOCK_FRAMES])))
            for start in range(0, body.shape[0], BLOCK_FRAMES)
        ]
        self._peak = max([self._peak, *tops])
        for index, top in enumerate(tops):
            if top * _OVERSHOOT_BOUND <= self._peak:
                continue
            start = index * BLOCK_FRAMES
            stop = min(body.shape[0], start + BLOCK_FRAMES)
            before = body[max(0, start - reach) : start] if start else self._context
            after = body[stop : stop + reach] if stop < body.shape[0] else tail
            window = np.concatenate([before, body[start:stop], after])
            upsampled = _oversample(window)
            begin = before.shape[0] * OVERSAMPLING_FACTOR
            inner = upsampled[begin : begin + (stop - start) * OVERSAMPLING_FACTOR]
            self._peak = max(self._peak, float(np.max(np.abs(inner))))


OVERSAMPLING_FACTOR = 4


def _oversample(window: Samples) -> Samples:
    from audio.loudness import _INTERPOLATOR_32, OVERSAMPLING

    # float32 taps keep the filtering in float32: the peak moves by ~1e-7, at half the cost.
    upsampled: Samples = resample_poly(window, OVERSAMPLING, 1, axis=0, window=_INTERPOLATOR_32)
    return upsampled


def _reach() -> int:
    from audio.loudness import BLOCK_OVERLAP

    return BLOCK_OVERLAP


@lru_cache(maxsize=8)
def _k_weighting(rate: int) -> list[tuple[Floats, Floats, float]]:
    # pyloudnorm's own stages (high shelf, then high pass), as integrated_loudness runs them.
    # Run as one fourth-order filter, the product of the two transfer functions: one pass
    # instead of two, within 1e-10 of running them one after the other.
    stages = list(pyloudnorm.Meter(rate)._filters.values())
    b, a, gain = np.ones(1), np.ones(1), 1.0
    for stage in stages:
        b, a = np.convolve(b, stage.b), np.convolve(a, stage.a)
        gain *= float(stage.passband_gain)
    return [(b, a, gain)]


def _block_bounds(frames: int, rate: int) -> tuple[Ints, Ints]:
    # Exactly pyloudnorm's: numBlocks = round((T - T_g) / (T_g * step)) + 1, and block j
    # spans int(T_g * (j * step) * rate) to int(T_g * (j * step + 1) * rate).
    step = 1.0 - GATE_OVERLAP
    seconds = frames / rate
    count = int(np.round((seconds - GATE_BLOCK_S) / (GATE_BLOCK_S * step))) + 1
    j = np.arange(max(count, 0), dtype=np.float64)
    lower = (GATE_BLOCK_S * (j * step) * rate).astype(np.int64)
    upper = (GATE_BLOCK_S * (j * step + 1) * rate).astype(np.int64)
    return lower, upper


def measure_source(source: Source, *, loudness: bool = True, peak: bool = True) -> Meter:
    """A meter that has been fed the whole source (its true peak only if ``peak``).

    Loudness and true peak are two passes over the source in two threads (the filters
    and the oversampling release the GIL), so a pass costs the longer of the two.
    """
    meter = Meter(source.rate, source.channels, loudness=loudness)
    meter.peak = peak
    if not loudness or not peak or source.frames < 4 * CHUNK_FRAMES:
        for chunk in chunks(source):
            meter.feed(chunk)
        return meter

    peaks = Meter(source.rate, source.channels, loudness=False)
    failed: list[BaseException] = []

    def track() -> None:
        try:
            for chunk in chunks(source):
                peaks.feed(chunk)
            peaks.true_peak()
        except BaseException as error:  # re-raised in the calling thread
            failed.append(error)

    worker = threading.Thread(target=track)
    worker.start()
    meter.peak = False
    try:
        for chunk in chunks(source):
            meter.feed(chunk)
    finally:
        worker.join()
    if failed:
        raise failed[0]
    meter.adopt_peak(peaks)
    return meter


def to_pcm16(chunk: Samples) -> tuple[bytes, int]:
    """16-bit little-endian PCM of float samples, and how many samples were clipped."""
    scaled = np.rint(chunk * np.float32(FULL_SCALE))
    clipped = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes(), clipped


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int] | None:
    """The 16-bit PCM frames and rate of a plain WAV file, or None if it is not one."""
    if path.suffix.lower() != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2 or handle.getcomptype() != "NONE":
                return None
            channels, rate = handle.getnchannels(), handle.getframerate()
            data = handle.readframes(handle.getnframes())
    except (wave.Error, EOFError, OSError):
        return None
    pcm = np.frombuffer(data, dtype="<i2")
    return pcm[: pcm.size - pcm.size % channels].reshape(-1, channels), rate


def wav_seconds(path: Path) -> float | None:
    """How long a plain 16-bit WAV plays, from its sample count; None for anything else."""
    if path.suffix.lower() != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2 or handle.getcomptype() != "NONE":
                return None
            return handle.getnframes() / handle.getframerate()
    except (wave.Error, EOFError, OSError):
        return None


def load(path: Path, rate: int, channels: int) -> Samples:
    """Any audio file as float32 at ``rate`` and ``channels``.

    A 16-bit WAV (what eSpeak NG writes) is read directly and resampled only when its
    rate differs; anything else is decoded by ffmpeg once, straight to that format.

    Raises:
        AudioError: when the file is missing; FfmpegError when ffmpeg cannot decode it.
    """
    return Clip.read(path, rate, channels).render()


class Clip:
    """One input file kept compact: its 16-bit PCM at its own rate (a WAV) or at the mix
    rate (decoded by ffmpeg), turned into float32 at the mix rate when it is played.

    An hour of distinct eSpeak NG items is 159 MB this way, against 635 MB as float32 at
    44.1 kHz; the few clips being played are rendered and kept in a small cache.
    """

    def __init__(
        self, pcm: npt.NDArray[np.int16], pcm_rate: int, rate: int, channels: int
    ) -> None:
        self.pcm = pcm
        self.pcm_rate = pcm_rate
        self.rate = rate
        self.channels = channels
        self.gain = 1.0
        common = math.gcd(pcm_rate, rate)
        self._up, self._down = rate // common, pcm_rate // common
        # resample_poly's output length.
        self.frames = int(-(-pcm.shape[0] * self._up // self._down))

    @classmethod
    def read(cls, path: Path, rate: int, channels: int) -> "Clip":
        """The file's PCM, read directly from a 16-bit WAV or decoded once by ffmpeg.

        Raises:
            AudioError: when the file is missing; FfmpegError when ffmpeg cannot decode it.
        """
        if not path.is_file():
            raise AudioError(f"{path}: no such audio file")

        wav = read_wav(path)
        if wav is not None:
            return cls(wav[0], wav[1], rate, channels)
        raw = run_ffmpeg(
            [
                *("-i", str(path), "-map", "0:a:0", "-vn", "-map_metadata", "-1"),
                *("-ac", str(channels), "-ar", str(rate), "-c:a", "pcm_s16le"),
                *("-f", "s16le", "pipe:1"),
            ]
        )
        pcm = np.frombuffer(raw, dtype="<i2")
        return cls(
            pcm[: pcm.size - pcm.size % channels].reshape(-1, channels), rate, rate, channels
        )

    def render(self) -> Samples:
        """The clip as float32 at the mix rate and channels, times its gain."""
        floats = self.pcm.astype(np.float32) * np.float32(self.gain / FULL_SCALE)
        if floats.shape[1] != self.channels:
            floats = (
                floats.mean(axis=1, keepdims=True)
                if self.channels == 1
                else np.repeat(floats[:, :1], self.channels, axis=1)
            )
        if self._up != self._down:
            floats = resample_poly(floats, self._up, self._down, axis=0)
        result: Samples = np.ascontiguousarray(floats, dtype=np.float32)
        return result


class _Rendered:
    """A small cache of rendered clips, shared by the threads reading one timeline."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._cache: dict[int, Samples] = {}
        self._lock = threading.Lock()

    def get(self, clip: "Clip | Samples") -> Samples:
        if isinstance(clip, np.ndarray):
            return clip
        key = id(clip)
        with self._lock:
            found = self._cache.pop(key, None)
            if found is not None:
                self._cache[key] = found
                return found
        rendered = clip.render()
        with self._lock:
            self._cache[key] = rendered
            while len(self._cache) > self.size:
                self._cache.pop(next(iter(self._cache)))
        return rendered


def decode_measured(path: Path, rate: int, channels: int) -> Meter:
    """Decode ``path`` with ffmpeg to 16-bit PCM, streaming it through a :class:`Meter`.

    Raises:
        AudioError: when the file is missing; FfmpegError when ffmpeg cannot decode it.
    """
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    command = _decoder(str(path), rate, channels)
    meter = Meter(rate, channels)
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        _meter_pcm(process.stdout, meter)
        stderr = process.stderr.read()
        process.wait()
    if process.returncode != 0:
        tail = stderr.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
        raise FfmpegError(command, tail, process.returncode)
    return meter


def _decoder(url: str, rate: int, channels: int) -> list[str]:
    return [
        find_ffmpeg(),
        *("-hide_banner", "-nostats", "-loglevel", "error"),
        *("-i", url, "-map", "0:a:0", "-vn", "-map_metadata", "-1"),
        *("-ac", str(channels), "-ar", str(rate), "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"),
    ]


def _meter_pcm(stream: IO[bytes], meter: Meter) -> None:
    frame_bytes = 2 * meter.channels
    leftover = b""
    while True:
        block = stream.read(CHUNK_FRAMES * frame_bytes)
        if not block:
            break
        data = leftover + block
        usable = len(data) - len(data) % frame_bytes
        leftover = data[usable:]
        pcm = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, meter.channels)
        meter.feed(pcm.astype(np.float32) / np.float32(FULL_SCALE))


def encode_piped(
    source: Source, args: list[str], out: Path, gain: float, rate: int, channels: int
) -> tuple[Meter, int]:
    """:func:`encode_stream` for a format ffmpeg can write to a pipe (OGG), measured as it
    is written: the encoder's output goes to ``out`` and, at the same time, to a decoder
    whose PCM is metered at ``rate`` / ``channels``, so no pass waits for another.

    Returns:
        the meter of the decoded file, and how many samples were clipped.

    Raises:
        FfmpegError: when the encoder or the decoder fails.
    """
    command = [find_ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
    command += ["-f", "s16le", "-ar", str(source.rate), "-ac", str(source.channels)]
    command += ["-i", "pipe:0", "-map_metadata", "-1", *args, "pipe:1"]
    decoder = _decoder("pipe:0", rate, channels)
    meter = Meter(rate, channels)
    clipped = [0]
    broken: list[str] = []

    with (
        tempfile.TemporaryFile() as encoder_errors,
        tempfile.TemporaryFile() as decoder_errors,
        out.open("wb") as written,
    ):
        try:
            encoder = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=encoder_errors
            )
        except OSError as error:
            raise FfmpegError(command, str(error), None) from error
        try:
            decoding = subprocess.Popen(
                decoder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=decoder_errors
            )
        except OSError as error:
            encoder.kill()
            encoder.wait()
            raise FfmpegError(decoder, str(error), None) from error
        assert encoder.stdin and encoder.stdout and decoding.stdin and decoding.stdout

        def feed() -> None:
            assert encoder.stdin is not None
            try:
                for chunk in chunks(source):
                    pcm, clips = to_pcm16(chunk * np.float32(gain) if gain != 1.0 else chunk)
                    clipped[0] += clips
                    encoder.stdin.write(pcm)
                encoder.stdin.close()
            except BrokenPipeError:
                broken.append("the encoder stopped reading its input")

        def relay() -> None:
            assert encoder.stdout is not None and decoding.stdin is not None
            feeding = True
            while block := encoder.stdout.read(1 << 16):
                written.write(block)
                if feeding:
                    try:
                        decoding.stdin.write(block)
                    except BrokenPipeError:
                        feeding = False
                        broken.append("the decoder stopped reading its input")
            try:
                decoding.stdin.close()
            except BrokenPipeError:
                broken.append("the decoder stopped reading its input")

        workers = [threading.Thread(target=feed), threading.Thread(target=relay)]
        for worker in workers:
            worker.start()
        _meter_pcm(decoding.stdout, meter)
        for worker in workers:
            worker.join()
        encoder.wait()
        decoding.wait()
        for process, errors, cmd in (
            (encoder, encoder_errors, command),
            (decoding, decoder_errors, decoder),
        ):
            if process.returncode != 0:
                errors.seek(0)
                tail = errors.read().decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
                raise FfmpegError(cmd, tail, process.returncode)
    if broken:
        raise FfmpegError(command, broken[0], None)
    return meter, clipped[0]


def encode_stream(source: Source, args: list[str], gain: float = 1.0) -> int:
    """Feed ``source`` as 16-bit PCM, scaled by ``gain``, to ffmpeg's standard input.

    Expects:
        ffmpeg's output arguments, ending with the output path. Several encodes run at
        once from several threads, each reading the source itself, so a fast encoder is
        never held to a slow one's pace.

    Returns:
        how many samples were clipped converting to 16-bit.

    Raises:
        FfmpegError: when ffmpeg fails.
    """
    command = [find_ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
    command += ["-f", "s16le", "-ar", str(source.rate), "-ac", str(source.channels)]
    command += ["-i", "pipe:0", "-map_metadata", "-1", *args]
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors
            )
        except OSError as error:
            raise FfmpegError(command, str(error), None) from error

        assert process.stdin is not None
        clipped, broken = 0, False
        with process:
            try:
                for chunk in chunks(source):
                    pcm, clips = to_pcm16(chunk * np.float32(gain) if gain != 1.0 else chunk)
                    clipped += clips
                    process.stdin.write(pcm)
                process.stdin.close()
            except BrokenPipeError:
                broken = True
            process.wait()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
    if process.returncode != 0:
        raise FfmpegError(command, stderr, process.returncode)
    if broken:
        raise FfmpegError(command, stderr or "ffmpeg stopped reading its input", None)
    return clipped
