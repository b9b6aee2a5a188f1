"""Bulletin audio: text-to-speech engines, recorded voice, mixing, loudness and the
delivery formats radio stations and chat groups receive.
"""

from audio.encode import RenderedFile, Tags, write_mp3, write_opus, write_wav
from audio.engines.base import Speech, TtsEngine
from audio.engines.espeak import EspeakEngine
from audio.engines.gtts import GttsEngine
from audio.engines.recorded import RecordedEngine
from audio.errors import AudioError, EngineError, FfmpegError, NoVoiceError
from audio.ffmpeg import decode, duration_by_decoding, find_ffmpeg, run_ffmpeg
from audio.loudness import Loudness, measure, normalize
from audio.mix import AudioPrefs, assemble
from audio.render import ProgramItem, RenderResult, estimate, fit, render_program
from audio.voices import Voices

__all__ = [
    "AudioError",
    "AudioPrefs",
    "EngineError",
    "EspeakEngine",
    "FfmpegError",
    "GttsEngine",
    "Loudness",
    "NoVoiceError",
    "ProgramItem",
    "RecordedEngine",
    "RenderResult",
    "RenderedFile",
    "Speech",
    "Tags",
    "TtsEngine",
    "Voices",
    "assemble",
    "decode",
    "duration_by_decoding",
    "estimate",
    "find_ffmpeg",
    "fit",
    "measure",
    "normalize",
    "render_program",
    "run_ffmpeg",
    "write_mp3",
    "write_opus",
    "write_wav",
]
