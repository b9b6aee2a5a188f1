"""eSpeak NG: offline, robotic, but it speaks Nepali, French and English on any machine."""

import asyncio
import logging
import re
import subprocess
import time
from pathlib import Path

from audio.engines.base import Speech, TtsEngine, speech_key
from audio.errors import EngineError

logger = logging.getLogger(__name__)

WAV_HEADER_BYTES = 44
VOICES_TIMEOUT_S = 10.0
# A voice claims its base language (en for en-us-nyc) only if nothing better does.
REGIONAL_PENALTY = 100

_OTHER_LANGUAGE = re.compile(r"\(([\w-]+) (\d+)\)")


class EspeakEngine(TtsEngine):
    """Speaks with the ``espeak-ng`` program, one WAV per text, reused within a workdir.

    Args:
        binary: the program to run (``HELPDESK_ESPEAK_BINARY``).
    """

    name = "espeak"

    def __init__(self, binary: str = "espeak-ng") -> None:
        self.binary = binary
        self._voices: dict[str, str] | None = None

    def languages(self) -> set[str]:
        """The languages eSpeak NG has a voice for; empty when it is not installed."""
        return set(self.voices())

    def voices(self) -> dict[str, str]:
        """Language tag → the eSpeak NG voice used for it (``en`` → ``en-gb``)."""
        if self._voices is None:
            self._voices = parse_voices(self._list_voices())
        return self._voices

    async def synthesize(self, text: str, language: str, workdir: Path) -> Speech:
        """Speak ``text`` with the language's voice into a WAV under ``workdir``.

        Raises:
            EngineError: when there is no voice, espeak-ng fails or writes no audio.
        """
        voice = self.voices().get(language)
        if voice is None:
            raise EngineError(self.name, language, "no eSpeak NG voice for this language")

        out = workdir / f"espeak-{speech_key(self.name, voice, text)[:32]}.wav"
        if out.is_file() and out.stat().st_size > WAV_HEADER_BYTES:
            logger.debug("espeak %s: reusing %s", language, out.name)
            return Speech(out, self.name, language)

        workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        await self._run(text, voice, language, out)

        logger.debug(
            "espeak %s (%s) wrote %s in %.2f s", language, voice, out.name, _since(started)
        )
        return Speech(out, self.name, language)

    async def _run(self, text: str, voice: str, language: str, out: Path) -> None:
        partial = out.with_suffix(".part.wav")
        try:
            # Text goes through stdin as UTF-8 (-b 1) so Devanagari, quotes and leading
            # dashes reach espeak-ng untouched by argument parsing or the locale.
            process = await asyncio.create_subprocess_exec(
                self.binary,
                "-v",
                voice,
                "-b",
                "1",
                "--stdin",
                "-w",
                str(partial),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await process.communicate(text.encode("utf-8"))
        except OSError as error:
            raise EngineError(self.name, language, f"cannot run {self.binary}: {error}") from error

        if process.returncode != 0:
            reason = f"{self.binary} exited with {process.returncode}: {stderr.decode()[-300:]}"
            raise EngineError(self.name, language, reason)
        if not partial.is_file() or partial.stat().st_size <= WAV_HEADER_BYTES:
            raise EngineError(self.name, language, "espeak-ng wrote no audio")
        partial.replace(out)

    def _list_voices(self) -> str:
        try:
            result = subprocess.run(
                [self.binary, "--voices"],
                capture_output=True,
                check=False,
                timeout=VOICES_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            logger.warning("eSpeak NG not available (%s): %s", self.binary, error)
            return ""

        if result.returncode != 0:
            logger.warning("%s --voices exited with %d", self.binary, result.returncode)
            return ""
        return result.stdout.decode("utf-8", "replace")


def parse_voices(listing: str) -> dict[str, str]:
    """Choose one voice per language from the output of ``espeak-ng --voices``.

    Each voice claims its own language at its priority (``Pty``) and the languages of its
    last column, such as ``(en 2)``, at theirs; a lower number wins. A regional voice also
    claims its base language, at a penalty, so ``ne`` or ``fr`` are never missing.

    Returns:
        lower-case language tag → voice language to pass to ``-v``.
    """
    best: dict[str, tuple[int, str]] = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[0].isdigit():
            continue

        voice = fields[1].lower()
        claims = [(voice, int(fields[0]))]
        claims += [(code.lower(), int(p)) for code, p in _OTHER_LANGUAGE.findall(line)]
        base = voice.split("-", 1)[0]
        claims.append((base, int(fields[0]) + REGIONAL_PENALTY))

        for code, priority in claims:
            if code not in best or priority < best[code][0]:
                best[code] = (priority, voice)

    return {code: voice for code, (_, voice) in best.items()}


def _since(started: float) -> float:
    return time.monotonic() - started
