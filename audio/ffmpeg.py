"""Running ffmpeg, and decoding any audio file to PCM with it alone.

pydub would otherwise call ffprobe to learn what a file holds; we never let it: every
input :func:`decode` is given is converted by ffmpeg to 16-bit PCM WAV at a rate and
channel count we choose, and pydub only parses that WAV. (The render itself reads
eSpeak NG's WAV directly and streams everything else; see :mod:`audio.stream`.)
"""

import io
import logging
import shutil
import struct
import subprocess
import time
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import imageio_ffmpeg

from audio.errors import AudioError, FfmpegError
from core.config import get_settings

with warnings.catch_warnings():
    # pydub looks for ffmpeg on PATH when imported and warns when it is absent; we give
    # it only WAV, which it parses without any converter. It also imports audioop,
    # deprecated in 3.11 and removed in 3.13 (where pydub needs the audioop-lts package).
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment as AudioSegment

logger = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 800
DURATION_RATE = 48_000


def find_ffmpeg() -> str:
    """The ffmpeg executable to run.

    Returns:
        ``HELPDESK_FFMPEG_BINARY`` when set, else ``ffmpeg`` on ``PATH``, else the binary
        bundled with imageio-ffmpeg.

    Raises:
        AudioError: when the configured binary does not exist.
    """
    return _locate(get_settings().ffmpeg_binary)


@lru_cache(maxsize=4)
def _locate(configured: str | None) -> str:
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise AudioError(f"HELPDESK_FFMPEG_BINARY={configured}: no such executable")
        return found

    on_path = shutil.which("ffmpeg")
    if on_path is not None:
        return on_path

    bundled: str = imageio_ffmpeg.get_ffmpeg_exe()
    logger.debug("ffmpeg not on PATH; using imageio-ffmpeg's %s", bundled)
    return bundled


def run_ffmpeg(args: Sequence[str], *, input_bytes: bytes | None = None) -> bytes:
    """Run ffmpeg with ``args`` and return what it wrote to standard output.

    Expects:
        arguments after the program name; ``-y``, a quiet log level and no banner are
        added. ``input_bytes`` is fed to standard input (for ``-i pipe:0``).

    Raises:
        FfmpegError: when ffmpeg cannot start or exits non-zero, with the command and the
            end of its error output.
    """
    command = [find_ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", *args]
    started = time.monotonic()
    try:
        result = subprocess.run(
            command,
            input=input_bytes,
            stdin=subprocess.DEVNULL if input_bytes is None else None,
            capture_output=True,
            check=False,
        )
    except OSError as error:
        raise FfmpegError(command, str(error), None) from error

    elapsed = time.monotonic() - started
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
        raise FfmpegError(command, tail, result.returncode)

    logger.debug("ffmpeg %s done in %.3f s", " ".join(args[:4]), elapsed)
    return result.stdout


def decode(path: Path, sample_rate: int, channels: int) -> AudioSegment:
    """Decode any audio file ffmpeg reads into 16-bit PCM at one rate and channel count.

    Expects:
        an existing file (WAV, MP3, OGG Vorbis or Opus, FLAC, M4A...); ``channels`` 1 or 2.

    Returns:
        a pydub segment with exactly ``sample_rate`` and ``channels``, sample width 2.

    Raises:
        AudioError: when the file is missing; FfmpegError when ffmpeg cannot decode it.
    """
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")

    wav = run_ffmpeg(
        [
            *("-i", str(path), "-map", "0:a:0", "-vn", "-map_metadata", "-1"),
            *("-ac", str(channels), "-ar", str(sample_rate), "-c:a", "pcm_s16le"),
            *("-f", "wav", "pipe:1"),
        ]
    )

    segment = AudioSegment.from_wav(io.BytesIO(_with_real_sizes(wav)))
    if (segment.frame_rate, segment.channels, segment.sample_width) != (
        sample_rate,
        channels,
        2,
    ):
        raise AudioError(f"{path}: ffmpeg decoded to an unexpected format")
    return segment


def duration_by_decoding(path: Path) -> float:
    """How long ``path`` plays, in seconds, as ffmpeg decodes it sample by sample.

    Unlike a container's header, this counts what a player will actually play.

    Raises:
        AudioError, FfmpegError: as :func:`decode`.
    """
    segment = decode(path, DURATION_RATE, 1)
    return float(segment.frame_count()) / DURATION_RATE


def _with_real_sizes(wav: bytes) -> bytes:
    # ffmpeg writing WAV to a pipe cannot seek back, so it leaves the RIFF and data sizes
    # at 0xFFFFFFFF; pydub trusts them, so we fill in the real ones.
    fixed = bytearray(wav)
    if len(fixed) > 0xFFFFFFFF or fixed[:4] != b"RIFF":
        raise AudioError("ffmpeg produced no WAV (or one over 4 GB)")

    struct.pack_into("<I", fixed, 4, len(fixed) - 8)
    position = 12
    while position + 8 <= len(fixed):
        chunk, size = struct.unpack_from("<4sI", fixed, position)
        if chunk == b"data":
            struct.pack_into("<I", fixed, position + 4, len(fixed) - position - 8)
            return bytes(fixed)
        position += 8 + size + (size & 1)

    raise AudioError("ffmpeg produced a WAV without a data chunk")
