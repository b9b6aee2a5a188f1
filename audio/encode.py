"""The files stations and chat groups receive, each measured again after it is written.

- MP3, constant bitrate with a Xing/Info header and ID3v2.3 tags, for playout systems.
- OGG Opus, mono 48 kHz, for Telegram and WhatsApp voice messages.
- WAV, 48 kHz 16-bit, for stations whose playout wants PCM.

Every :class:`RenderedFile` reports what the written file holds (decoded again by
ffmpeg, streamed through the loudness meter), not what we meant to write. The formats of
one bulletin are encoded together: one pass over the mix feeds 16-bit PCM to an ffmpeg
per format through its standard input.
"""

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from mutagen.id3 import ID3, TALB, TDRC, TIT2, TLAN, TPE1
from mutagen.mp3 import MP3
from mutagen.oggopus import OggOpus
from mutagen.wave import WAVE

from audio.ffmpeg import AudioSegment
from audio.languages import iso639_2
from audio.loudness import Loudness, from_db, level, measure_stream, to_db
from audio.mix import AudioPrefs
from audio.pcm import to_samples
from audio.stream import (
    ArraySource,
    Gained,
    Meter,
    Source,
    decode_measured,
    encode_piped,
    encode_stream,
)

logger = logging.getLogger(__name__)

# mutagen ships py.typed but leaves its constructors unannotated; these aliases give the
# few we use a type, so strict mypy still checks everything around them.
_open_mp3: Callable[[Path], Any] = MP3
_open_opus: Callable[[Path], Any] = OggOpus
_open_wave: Callable[[Path], Any] = WAVE
_new_id3: Callable[[], Any] = ID3
_ID3_FRAMES: dict[str, Callable[..., Any]] = {
    "TIT2": TIT2,
    "TPE1": TPE1,
    "TALB": TALB,
    "TLAN": TLAN,
    "TDRC": TDRC,
}

OPUS_RATE = 48_000
OPUS_BITRATE = "32k"
WAV_RATE = 48_000
DURATION_TOLERANCE_S = 0.1
ENCODE_PASSES = 3
LUFS_TOLERANCE = 0.1
PEAK_MARGIN_DB = 0.1
# ID3v2.3 with UTF-16 text, not v2.4 with UTF-8: the older playout systems and car
# stereos stations still use read v2.3 only, and UTF-16 still carries Devanagari.
ID3_VERSION = 3
# LAME plays a mono 128 kbit/s MP3 of speech about 0.45 dB quieter than the PCM it was
# given (measured on eSpeak NG and recorded speech); the feed is raised by that much so
# the first encode lands on level. The file is still measured, and encoded again if not.
MP3_LEVEL_DRIFT_DB = {(128, 1): -0.446}


@dataclass(frozen=True)
class Tags:
    """What an MP3 (and an OGG) says about itself.

    Attributes:
        title: the bulletin's title (TIT2).
        artist: the station (TPE1).
        album: the programme (TALB).
        language: the bulletin's language tag such as ``ne``; written as ISO 639-2 (TLAN).
        air_date: the day it airs (TDRC).
    """

    title: str
    artist: str
    album: str
    language: str
    air_date: date | None = None


@dataclass(frozen=True)
class RenderedFile:
    """One written file, as measured from the file itself.

    Attributes:
        format: ``mp3``, ``opus`` or ``wav``.
        duration_s: from the container (mutagen), checked against ffmpeg's decoding.
        lufs, true_peak_dbtp: loudness and true peak of the decoded file.
        sha256: hex digest of the file's bytes.
    """

    format: str
    path: Path
    size: int
    duration_s: float
    lufs: float
    true_peak_dbtp: float
    sha256: str


@dataclass(frozen=True)
class _Encoding:
    """How one delivery format is produced and read back."""

    name: str
    args: list[str]
    rate: int
    channels: int
    container_seconds: Callable[[Path], float]
    # The true-peak ceiling a lossy file is corrected to, or None to write as given.
    ceiling: float | None = None


def write_mp3(segment: AudioSegment, path: Path, prefs: AudioPrefs, tags: Tags) -> RenderedFile:
    """Write a constant-bitrate MP3 with an Info header and ID3v2.3 tags.

    The file is measured after encoding and, if it plays at a different loudness than
    ``segment`` or its true peak is over ``prefs.max_true_peak``, the segment is
    re-levelled for what the encoder does and encoded once more.

    Raises:
        FfmpegError: when encoding fails; AudioError when the result cannot be decoded.
    """
    source = ArraySource(to_samples(segment), segment.frame_rate)
    return write_formats(source, [("mp3", path)], prefs, tags)[0]


def write_opus(segment: AudioSegment, path: Path, tags: Tags | None = None) -> RenderedFile:
    """Write OGG Opus, mono 48 kHz, 32 kbit/s VoIP: a voice message Telegram and WhatsApp play.

    A ten-minute bulletin is about 2.4 MB, far under the 16 MB both accept. The file is
    written once, as given: at this bitrate Opus plays about 0.2 LU louder than its input
    and rebuilds peaks 1.5-2 dB above it from its own coding noise, which neither a
    limiter before the encoder nor a lower level reliably reaches (we measured the peak
    staying put as the level went down). Its measured loudness and true peak are in the
    returned :class:`RenderedFile`; from -16 LUFS input it peaks near 0 dBTP.

    Raises:
        FfmpegError: when encoding fails; AudioError when the result cannot be decoded.
    """
    source = ArraySource(to_samples(segment), segment.frame_rate)
    return write_formats(source, [("opus", path)], AudioPrefs(), tags)[0]


def write_wav(segment: AudioSegment, path: Path) -> RenderedFile:
    """Write 48 kHz 16-bit PCM WAV, keeping the segment's channels.

    Raises:
        FfmpegError: when writing fails; AudioError when the result cannot be decoded.
    """
    source = ArraySource(to_samples(segment), segment.frame_rate)
    return write_formats(source, [("wav", path)], AudioPrefs(), None)[0]


def write_formats(
    source: Source,
    outputs: list[tuple[str, Path]],
    prefs: AudioPrefs,
    tags: Tags | None,
    wanted: Loudness | None = None,
) -> list[RenderedFile]:
    """Write ``source`` in every format of ``outputs`` (``mp3``, ``opus``, ``wav``) at once.

    One pass over the source feeds every encoder; the files are then decoded and measured
    concurrently. The MP3 is corrected towards ``wanted`` (the source's loudness and true
    peak, measured when not given) as :func:`write_mp3` says; the others are written as
    given.

    Raises:
        FfmpegError: when encoding fails; AudioError when a result cannot be decoded.
    """
    encodings = [_encoding(fmt, prefs, source.channels) for fmt, _ in outputs]
    partials = [_partial(path) for _, path in outputs]
    if wanted is None and any(e.ceiling is not None for e in encodings):
        wanted = measure_stream(source)
    correcting = wanted is not None and math.isfinite(wanted.lufs)
    drift = MP3_LEVEL_DRIFT_DB.get((prefs.mp3_bitrate_kbps, source.channels), 0.0)
    gains = [from_db(-drift) if e.ceiling is not None and correcting else 1.0 for e in encodings]

    # Each format is encoded and then decoded and measured in its own thread: the MP3 is
    # measured while the slower Opus encoder is still running.
    with ThreadPoolExecutor(max_workers=len(outputs)) as pool:
        meters = list(pool.map(partial_encoded(source), encodings, partials, gains))

    for index, encoding in enumerate(encodings):
        if encoding.ceiling is not None and correcting:
            assert wanted is not None
            meters[index] = _on_target(
                source, partials[index], encoding, wanted, gains[index], meters[index]
            )

    files: list[RenderedFile] = []
    for (_, path), partial, encoding, meter in zip(
        outputs, partials, encodings, meters, strict=True
    ):
        if encoding.name == "mp3" and tags is not None:
            _tag_mp3(partial, tags)
        elif encoding.name == "opus":
            _tag_opus(partial, tags)
        files.append(_published(partial, path, encoding, meter))
    return files


def _encoding(fmt: str, prefs: AudioPrefs, channels: int) -> _Encoding:
    if fmt == "mp3":
        args = ["-ac", str(prefs.channels), "-ar", str(prefs.mp3_sample_rate)]
        args += ["-c:a", "libmp3lame", "-b:a", f"{prefs.mp3_bitrate_kbps}k"]
        # ffmpeg writes the Xing/Info frame only when it can seek back into a real file;
        # our own ID3 tags come from mutagen, so ffmpeg writes none.
        args += ["-write_xing", "1", "-id3v2_version", "0", "-f", "mp3"]
        return _Encoding(
            "mp3", args, prefs.mp3_sample_rate, prefs.channels, _mp3_seconds, prefs.max_true_peak
        )
    if fmt == "opus":
        args = ["-ac", "1", "-ar", str(OPUS_RATE), "-c:a", "libopus", "-b:a", OPUS_BITRATE]
        args += ["-application", "voip", "-f", "ogg"]
        return _Encoding("opus", args, OPUS_RATE, 1, _opus_seconds)
    args = ["-ar", str(WAV_RATE), "-c:a", "pcm_s16le", "-f", "wav"]
    return _Encoding("wav", args, WAV_RATE, channels, _wav_seconds)


def _partial(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed by _published: a playout system watching the folder
    # never picks up half a file.
    return path.with_name(f"{path.name}.part")


def partial_encoded(source: Source) -> Callable[[_Encoding, Path, float], Meter]:
    """Encode ``source`` to one file, then decode and measure it."""

    def run(encoding: _Encoding, out: Path, gain: float) -> Meter:
        if encoding.name == "opus":
            # OGG needs no seeking back, so it is decoded and measured as it is written.
            meter, clipped = encode_piped(
                source, encoding.args, out, gain, encoding.rate, encoding.channels
            )
            if clipped:
                logger.warning("clipped %d samples converting to 16-bit for %s", clipped, out)
            return meter
        _encode(source, encoding, out, gain)
        return _decoded(out, encoding)

    return run


def _encode(source: Source, encoding: _Encoding, out: Path, gain: float) -> None:
    clipped = encode_stream(source, [*encoding.args, str(out)], gain)
    if clipped:
        logger.warning("clipped %d samples converting to 16-bit for %s", clipped, out.name)


def _decoded(path: Path, encoding: _Encoding) -> Meter:
    return decode_measured(path, encoding.rate, encoding.channels)


def _loudness(meter: Meter) -> Loudness:
    return Loudness(meter.integrated_lufs(), to_db(meter.true_peak()))


def _on_target(
    segment: Source,
    partial: Path,
    encoding: _Encoding,
    wanted: Loudness,
    gain: float,
    meter: Meter,
) -> Meter:
    assert encoding.ceiling is not None
    ceiling = encoding.ceiling
    source: Source = segment
    given = Loudness(wanted.lufs + to_db(gain), wanted.true_peak_dbtp + to_db(gain))
    quieter = False
    for attempt in range(1, ENCODE_PASSES + 1):
        if attempt > 1:
            _encode(source, encoding, partial, gain)
            meter = _decoded(partial, encoding)
        got = _loudness(meter)
        on_level = quieter or abs(got.lufs - wanted.lufs) < LUFS_TOLERANCE
        if on_level and got.true_peak_dbtp <= ceiling:
            return meter

        logger.info(
            "%s pass %d: %s plays %.2f LUFS, %.2f dBTP (wanted %.2f LUFS, ceiling %.2f dBTP)",
            partial.name,
            attempt,
            encoding.name,
            got.lufs,
            got.true_peak_dbtp,
            wanted.lufs,
            ceiling,
        )
        if attempt == ENCODE_PASSES:
            break
        if not on_level:
            source, given = _releveled(segment, wanted, given, got, ceiling)
            gain = 1.0
        else:
            # On level but over the ceiling: what is left is the codec's own peaks, which
            # the limiter did not reach; a lower level brings them under.
            source = Gained(source, gain * from_db(ceiling - PEAK_MARGIN_DB - got.true_peak_dbtp))
            gain = 1.0
            quieter = True

    logger.warning(
        "%s: %s still off target after %d passes", partial.name, encoding.name, ENCODE_PASSES
    )
    return meter


def _releveled(
    segment: Source, wanted: Loudness, given: Loudness, got: Loudness, ceiling: float
) -> tuple[Source, Loudness]:
    # Lossy encoders shift the level a little (LAME at 128 kbit/s plays 0.45 dB quieter)
    # and rebuild peaks higher than the PCM they were given. Both are nearly stable for
    # a given input, so the encoder gets a version levelled and limited for what it does;
    # the original is re-levelled each pass so passes never stack their processing.
    drift = got.lufs - given.lufs
    overshoot = got.true_peak_dbtp - given.true_peak_dbtp - drift
    pcm_ceiling = ceiling - PEAK_MARGIN_DB - drift - max(0.0, overshoot)
    return level(segment, wanted.lufs - drift, pcm_ceiling)


def _published(partial: Path, path: Path, encoding: _Encoding, meter: Meter) -> RenderedFile:
    started = time.monotonic()
    os.replace(partial, path)
    seconds = encoding.container_seconds(path)

    # Tags do not change the audio: the meter that decoded the partial file stands.
    decoded_seconds = meter.frames / encoding.rate
    if abs(decoded_seconds - seconds) > DURATION_TOLERANCE_S:
        logger.warning(
            "%s: container says %.3f s, ffmpeg decodes %.3f s", path.name, seconds, decoded_seconds
        )

    level = _loudness(meter)
    rendered = RenderedFile(
        format=encoding.name,
        path=path,
        size=path.stat().st_size,
        duration_s=seconds,
        lufs=level.lufs,
        true_peak_dbtp=level.true_peak_dbtp,
        sha256=_sha256(path),
    )
    logger.info(
        "wrote %s: %d bytes, %.2f s, %.2f LUFS, %.2f dBTP (measured in %.2f s)",
        path.name,
        rendered.size,
        rendered.duration_s,
        rendered.lufs,
        rendered.true_peak_dbtp,
        time.monotonic() - started,
    )
    return rendered


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _mp3_seconds(path: Path) -> float:
    return float(_open_mp3(path).info.length)


def _opus_seconds(path: Path) -> float:
    return float(_open_opus(path).info.length)


def _wav_seconds(path: Path) -> float:
    return float(_open_wave(path).info.length)


def _tag_mp3(path: Path, tags: Tags) -> None:
    frames = {
        "TIT2": tags.title,
        "TPE1": tags.artist,
        "TALB": tags.album,
        "TLAN": iso639_2(tags.language),
    }
    if tags.air_date is not None:
        frames["TDRC"] = tags.air_date.isoformat()

    id3 = _new_id3()
    for frame, text in frames.items():
        # Encoding 1 is UTF-16, which every ID3v2.3 reader understands for any script.
        id3.add(_ID3_FRAMES[frame](encoding=1, text=[text]))
    id3.save(path, v2_version=ID3_VERSION)


def _tag_opus(path: Path, tags: Tags | None) -> None:
    if tags is None:
        return

    opus = _open_opus(path)
    comments = {"TITLE": tags.title, "ARTIST": tags.artist, "ALBUM": tags.album}
    comments["LANGUAGE"] = tags.language
    if tags.air_date is not None:
        comments["DATE"] = tags.air_date.isoformat()
    for key, value in comments.items():
        opus.tags[key] = value
    opus.save()
