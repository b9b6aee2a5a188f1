"""From a bulletin's items to delivered files: speak, check the slot, mix, level, encode.

The pipeline, for one bulletin::

    items ──speak──▶ speeches ──fit?──▶ assemble ──normalize──▶ write mp3 / opus / wav

Speech is never cut to fit a slot: :func:`estimate` and :func:`fit` tell the caller which
items do not fit before anything is rendered, and :func:`render_program` refuses a
programme that is too long.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from audio.encode import RenderedFile, Tags, write_formats
from audio.errors import AudioError
from audio.ffmpeg import duration_by_decoding
from audio.loudness import Loudness, level
from audio.mix import AudioPrefs, Pieces, build
from audio.stream import Source, wav_seconds
from audio.voices import Voices

logger = logging.getLogger(__name__)

DEFAULT_FORMATS = ("mp3", "opus")
EXTENSIONS = {"mp3": ".mp3", "opus": ".ogg", "wav": ".wav"}


@dataclass(frozen=True)
class ProgramItem:
    """One spoken item of a bulletin: its text and the language it is written in."""

    text: str
    language: str


@dataclass(frozen=True)
class RenderResult:
    """What a render produced.

    Attributes:
        files: one per format, in the order asked.
        engines: per item, the engine that spoke it (``espeak``, ``gtts``, ``recorded``).
        speech_seconds: per item, how long it plays.
    """

    files: list[RenderedFile]
    engines: list[str]
    speech_seconds: list[float]


async def render_program(
    items: list[ProgramItem],
    prefs: AudioPrefs,
    *,
    voices: Voices,
    workdir: Path,
    out_dir: Path,
    basename: str,
    tags: Tags,
    intro: Path | None = None,
    outro: Path | None = None,
    bed: Path | None = None,
    formats: Sequence[str] | None = None,
) -> RenderResult:
    """Speak, mix, level and encode a bulletin into ``out_dir/basename.{mp3,ogg,wav}``.

    Expects:
        items with non-empty texts; ``formats`` among ``mp3``, ``opus``, ``wav`` (default
        mp3 and opus, plus wav when ``prefs.wav``).

    Returns:
        the files as measured after writing, and which engine spoke each item.

    Raises:
        NoVoiceError: when an item's language cannot be spoken here.
        AudioError: when the programme exceeds ``prefs.max_duration_s`` (nothing is cut),
            for an unknown format or an empty item; FfmpegError when encoding fails.
    """
    started = time.monotonic()
    chosen = _formats(formats, prefs)
    _check_items(items)

    speeches = [await voices.speak(item.text, item.language, workdir) for item in items]
    # Each file is converted once (eSpeak's WAV read directly); its duration is its
    # sample count, and the same samples are mixed.
    pieces = Pieces(prefs)
    seconds = [await asyncio.to_thread(pieces.seconds, s.path) for s in speeches]

    intro_s = await asyncio.to_thread(pieces.seconds, intro) if intro else 0.0
    outro_s = await asyncio.to_thread(pieces.seconds, outro) if outro else 0.0
    _check_fits(seconds, prefs, intro_s, outro_s, basename)

    mix, wanted = await asyncio.to_thread(
        _mix_and_level, [s.path for s in speeches], prefs, intro, outro, bed, pieces
    )

    outputs = [(fmt, out_dir / f"{basename}{EXTENSIONS[fmt]}") for fmt in chosen]
    files = await asyncio.to_thread(write_formats, mix, outputs, prefs, tags, wanted)

    logger.info(
        "rendered %s: %d items, %.1f s, %s in %.2f s",
        basename,
        len(items),
        mix.frames / mix.rate,
        "+".join(chosen),
        time.monotonic() - started,
    )
    return RenderResult(files, [s.engine for s in speeches], seconds)


async def estimate(items: list[ProgramItem], voices: Voices, workdir: Path) -> list[float]:
    """How many seconds each item plays, by speaking it (results are reused by the render).

    Raises:
        NoVoiceError: when an item's language cannot be spoken here.
    """
    _check_items(items)

    seconds: list[float] = []
    for item in items:
        speech = await voices.speak(item.text, item.language, workdir)
        seconds.append(await asyncio.to_thread(_seconds, speech.path))
    return seconds


def _seconds(path: Path) -> float:
    # A WAV's sample count is its duration; anything else is decoded to count.
    from_header = wav_seconds(path)
    return from_header if from_header is not None else duration_by_decoding(path)


def fit(
    durations: list[float], prefs: AudioPrefs, *, intro_s: float = 0.0, outro_s: float = 0.0
) -> list[int]:
    """The indexes of the items that end after ``prefs.max_duration_s``.

    The programme is laid out as :func:`audio.mix.assemble` does: intro, items and outro,
    with ``pause_ms`` between consecutive pieces. Items keep their order, so once one
    overruns, every later one does too.

    Returns:
        an empty list when everything fits (or there is no limit).
    """
    if prefs.max_duration_s is None:
        return []

    pause = prefs.pause_ms / 1000
    outro_tail = outro_s + pause if outro_s else 0.0
    clock = intro_s + pause if intro_s else 0.0
    over: list[int] = []
    for index, seconds in enumerate(durations):
        clock += (pause if index else 0.0) + seconds
        if clock + outro_tail > prefs.max_duration_s:
            over.append(index)
    return over


def _formats(formats: Sequence[str] | None, prefs: AudioPrefs) -> list[str]:
    chosen = list(formats) if formats is not None else [*DEFAULT_FORMATS]
    if formats is None and prefs.wav:
        chosen.append("wav")

    unknown = [fmt for fmt in chosen if fmt not in EXTENSIONS]
    if unknown:
        raise AudioError(f"unknown audio formats {unknown}; known: {', '.join(EXTENSIONS)}")
    return chosen


def _check_items(items: list[ProgramItem]) -> None:
    if not items:
        raise AudioError("a bulletin needs at least one item")
    # Numbered from 1, as the editor's script shows them.
    for number, item in enumerate(items, start=1):
        if not item.text.strip():
            raise AudioError(f"item {number} ({item.language}) has no text")


def _check_fits(
    seconds: list[float], prefs: AudioPrefs, intro_s: float, outro_s: float, name: str
) -> None:
    if prefs.max_duration_s is None:
        return

    over = fit(seconds, prefs, intro_s=intro_s, outro_s=outro_s)
    if over:
        raise AudioError(
            f"{name}: items {', '.join(map(str, over))} do not fit in "
            f"{prefs.max_duration_s:g} s; shorten or drop them (speech is never cut)"
        )


def _mix_and_level(
    speeches: list[Path],
    prefs: AudioPrefs,
    intro: Path | None,
    outro: Path | None,
    bed: Path | None,
    pieces: Pieces,
) -> tuple[Source, Loudness]:
    mix = build(speeches, prefs, intro, outro, bed, pieces)
    return level(mix, prefs.target_lufs, prefs.max_true_peak - prefs.codec_headroom_db)
