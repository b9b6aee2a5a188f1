"""Putting a bulletin together: intro jingle, spoken items with pauses, outro, music bed.

Inputs come from everywhere (eSpeak's 22.05 kHz WAV, gTTS's 24 kHz MP3, a 48 kHz
jingle, a listener's OGG Opus voice note); each is converted to the one rate and channel
count of :class:`AudioPrefs` (a 16-bit WAV read directly and resampled, anything else
decoded by ffmpeg), so nothing is truncated, sped up or pitched.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.errors import AudioError
from audio.ffmpeg import AudioSegment
from audio.loudness import from_db, integrated_lufs, to_db
from audio.pcm import Samples, from_samples
from audio.stream import Clip, Timeline, chunks

logger = logging.getLogger(__name__)

BED_FADE_S = 1.0
HEADROOM = 0.99


@dataclass(frozen=True)
class AudioPrefs:
    """How a bulletin is mixed and delivered.

    Mono by default: a bulletin is one voice at a time, FM community stations and phones
    play speech in mono, and a mono file is half the size for the same quality, which
    matters on 2G uploads. Stereo jingles are folded down; set ``channels=2`` to keep them.

    Attributes:
        sample_rate: the rate everything is mixed at.
        channels: 1 (mono) or 2 (stereo).
        target_lufs: integrated loudness of the result (EBU R128 says -23; many
            stations and podcasts use -16).
        max_true_peak: the ceiling for inter-sample peaks, dBTP.
        codec_headroom_db: kept below ``max_true_peak`` before lossy encoding, since MP3
            and Opus reconstruct peaks a fraction of a dB higher than the PCM they got.
        mp3_bitrate_kbps, mp3_sample_rate: the constant bitrate MP3 stations receive.
        max_duration_s: the station's slot; ``None`` for no limit.
        wav: also deliver 48 kHz 16-bit WAV (for playout systems that want PCM).
        pause_ms: silence between jingles and items.
        bed_gain_db: the music bed's loudness relative to the speech, in LU.
    """

    sample_rate: int = 44_100
    channels: int = 1
    target_lufs: float = -23.0
    max_true_peak: float = -1.0
    codec_headroom_db: float = 0.5
    mp3_bitrate_kbps: int = 128
    mp3_sample_rate: int = 44_100
    max_duration_s: float | None = None
    wav: bool = False
    pause_ms: int = 700
    bed_gain_db: float = -18.0

    def __post_init__(self) -> None:
        if self.channels not in (1, 2):
            raise AudioError(f"AudioPrefs.channels must be 1 or 2, not {self.channels}")
        if not 8_000 <= self.sample_rate <= 192_000:
            raise AudioError(f"AudioPrefs.sample_rate {self.sample_rate} Hz is not usable")
        if self.pause_ms < 0:
            raise AudioError("AudioPrefs.pause_ms cannot be negative")


def assemble(
    speeches: list[Path],
    prefs: AudioPrefs,
    intro: Path | None = None,
    outro: Path | None = None,
    bed: Path | None = None,
) -> AudioSegment:
    """Mix a bulletin: intro, each speech with a pause between pieces, outro, bed under.

    Every piece is decoded to ``prefs.sample_rate`` / ``prefs.channels`` and brought to
    ``prefs.target_lufs`` first, so a quiet voice note is not lost beside a loud TTS clip.
    The bed loops under the speech (first item to last) at ``bed_gain_db`` below it,
    fading in and out.

    Returns:
        a 16-bit segment; its length is the sum of the pieces and pauses, to the sample.

    Raises:
        AudioError: with no speech, or a missing file; FfmpegError for an unreadable one.
    """
    started = time.monotonic()
    timeline = build(speeches, prefs, intro, outro, bed)
    mix = np.concatenate(list(chunks(timeline)))
    segment = from_samples(_with_headroom(mix), prefs.sample_rate)
    logger.info(
        "assembled %d items into %.2f s at %d Hz in %.2f s",
        len(speeches),
        segment.duration_seconds,
        prefs.sample_rate,
        time.monotonic() - started,
    )
    return segment


class Pieces:
    """Each input file converted and levelled once, however often it is placed."""

    def __init__(self, prefs: AudioPrefs) -> None:
        self.prefs = prefs
        self._loaded: dict[Path, Clip] = {}

    def get(self, path: Path) -> Clip:
        """The file at the mix rate and channels, brought to the target loudness."""
        key = path.resolve()
        if key not in self._loaded:
            self._loaded[key] = _piece(path, self.prefs)
        return self._loaded[key]

    def seconds(self, path: Path) -> float:
        """How long the file plays, from its converted sample count."""
        return self.get(path).frames / self.prefs.sample_rate


def build(
    speeches: list[Path],
    prefs: AudioPrefs,
    intro: Path | None = None,
    outro: Path | None = None,
    bed: Path | None = None,
    pieces: Pieces | None = None,
) -> Timeline:
    """The bulletin :func:`assemble` mixes, as a :class:`Timeline` rendered on demand.

    Raises:
        AudioError: with no speech, or a missing file; FfmpegError for an unreadable one.
    """
    if not speeches:
        raise AudioError("a bulletin needs at least one spoken item")

    pieces = pieces or Pieces(prefs)
    pause = round(prefs.pause_ms / 1000 * prefs.sample_rate)
    timeline = Timeline(prefs.sample_rate, prefs.channels)
    order = [*([intro] if intro else []), *speeches, *([outro] if outro else [])]
    span_start = span_stop = 0
    for index, path in enumerate(order):
        if index:
            timeline.pause(pause)
        start = timeline.append(pieces.get(path))
        if index == (1 if intro else 0):
            span_start = start
        if index == len(order) - (2 if outro else 1):
            span_stop = timeline.frames

    if bed is not None:
        _lay_bed(timeline, (span_start, span_stop), pieces.get(bed), prefs)
    return timeline


def _piece(path: Path, prefs: AudioPrefs) -> Clip:
    clip = Clip.read(path, prefs.sample_rate, prefs.channels)
    try:
        level = integrated_lufs(clip.render(), prefs.sample_rate)
    except AudioError:
        # Under 400 ms (a short sting): too short to measure, kept as it is.
        return clip
    if np.isfinite(level):
        clip.gain = from_db(prefs.target_lufs - level)
    return clip


def _lay_bed(timeline: Timeline, span: tuple[int, int], bed: Clip, prefs: AudioPrefs) -> None:
    start, stop = span
    length = stop - start
    if length <= 0 or bed.frames == 0:
        return

    fade = min(round(BED_FADE_S * prefs.sample_rate), length // 2)
    # Pieces were brought to the target, so the bed's offset from the target is its
    # offset from the speech.
    timeline.lay_bed(start, stop, bed, fade, from_db(prefs.bed_gain_db))


def _with_headroom(mix: Samples) -> Samples:
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak <= HEADROOM:
        return mix
    # Loudness is set later by normalize(); here we only keep 16-bit from clipping.
    logger.debug("mix peaks at %.2f dBFS; scaled down to fit 16-bit", to_db(peak))
    return (mix * np.float32(HEADROOM / peak)).astype(np.float32)
