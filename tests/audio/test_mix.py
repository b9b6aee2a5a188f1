"""Assembling a bulletin from pieces of every rate and format, without losing a sample."""

from pathlib import Path

import numpy as np
import pytest

from audio.engines.espeak import EspeakEngine
from audio.errors import AudioError
from audio.ffmpeg import decode, duration_by_decoding
from audio.mix import AudioPrefs, assemble
from audio.pcm import to_samples
from tests.audio.conftest import JINGLES


async def espeak_clip(workdir: Path) -> Path:
    """A 22.05 kHz mono WAV, as eSpeak NG writes."""
    speech = await EspeakEngine().synthesize("Bonjour, voici les nouvelles.", "fr", workdir)
    assert decode(speech.path, 22_050, 1).frame_count() > 0
    return speech.path


async def test_tts_jingle_and_voice_note_add_up_at_one_rate(
    workdir: Path, voice_note: Path
) -> None:
    prefs = AudioPrefs(pause_ms=500)
    tts = await espeak_clip(workdir)
    intro = JINGLES / "intro.ogg"
    pieces = [intro, tts, voice_note]

    mix = assemble([tts, voice_note], prefs, intro=intro)

    expected = sum(duration_by_decoding(p) for p in pieces) + 2 * 0.5
    assert (mix.frame_rate, mix.channels, mix.sample_width) == (44_100, 1, 2)
    assert mix.frame_count() / 44_100 == pytest.approx(expected, abs=0.005)


async def test_the_voice_note_keeps_its_pitch(workdir: Path, voice_note: Path) -> None:
    prefs = AudioPrefs(pause_ms=0)
    tts = await espeak_clip(workdir)
    tts_frames = round(duration_by_decoding(tts) * 44_100)

    mix = assemble([tts, voice_note], prefs)

    note = to_samples(mix)[tts_frames + 4_410 : tts_frames + 48_510, 0]
    spectrum = np.abs(np.fft.rfft(note * np.hanning(note.size)))
    peak_hz = np.fft.rfftfreq(note.size, 1 / 44_100)[int(np.argmax(spectrum))]
    assert peak_hz == pytest.approx(440.0, abs=2.0)


async def test_intro_items_and_outro_are_separated_by_the_pause(
    workdir: Path, voice_note: Path
) -> None:
    prefs = AudioPrefs(pause_ms=700, sample_rate=48_000, channels=2)
    tts = await espeak_clip(workdir)
    intro, outro = JINGLES / "intro.ogg", JINGLES / "outro.ogg"

    mix = assemble([tts, voice_note], prefs, intro=intro, outro=outro)

    samples = to_samples(mix)
    start = round(duration_by_decoding(intro) * 48_000)
    gap = samples[start + 10 : start + round(0.69 * 48_000)]
    assert mix.channels == 2
    assert np.max(np.abs(gap)) == 0.0
    expected = sum(duration_by_decoding(p) for p in [intro, tts, voice_note, outro]) + 3 * 0.7
    assert mix.duration_seconds == pytest.approx(expected, abs=0.005)


async def test_the_bed_plays_under_the_speech_only(workdir: Path, voice_note: Path) -> None:
    prefs = AudioPrefs(pause_ms=700)
    tts = await espeak_clip(workdir)
    intro = JINGLES / "intro.ogg"

    dry = to_samples(assemble([tts, voice_note], prefs, intro=intro))
    wet = to_samples(assemble([tts, voice_note], prefs, intro=intro, bed=JINGLES / "bed.ogg"))

    under = np.abs(wet - dry)
    intro_end = round(duration_by_decoding(intro) * 44_100)
    speech_start = intro_end + round(0.7 * 44_100)
    assert wet.shape == dry.shape
    assert np.max(under[:speech_start]) == 0.0
    assert np.max(under[speech_start + 44_100 : speech_start + 88_200]) > 0.001
    # The bed sits 18 LU under the speech: quiet beside it.
    assert np.sqrt(np.mean(under**2)) < 0.2 * np.sqrt(np.mean(dry[speech_start:] ** 2))


def test_a_bulletin_needs_speech() -> None:
    with pytest.raises(AudioError, match="at least one"):
        assemble([], AudioPrefs())


def test_prefs_refuse_a_channel_count_we_do_not_deliver() -> None:
    with pytest.raises(AudioError, match="channels"):
        AudioPrefs(channels=6)
