"""Google Translate's text-to-speech through gTTS: natural voices, online only.

Every text sent here leaves the machine for Google's servers, which is why the default
engine order uses eSpeak NG only; a deployment opts in per language with
``HELPDESK_TTS_ORDER``. Results are cached on disk, so a bulletin estimated and then
rendered, or aired again, asks Google once.
"""

import asyncio
import io
import logging
import os
import time
from pathlib import Path

from gtts import gTTS, gTTSError
from gtts.lang import tts_langs

from audio.engines.base import Speech, TtsEngine, speech_key
from audio.errors import EngineError

logger = logging.getLogger(__name__)

TOO_MANY_REQUESTS = 429
REQUEST_TIMEOUT_S = 30.0


class _Retryable(Exception):
    """Google answered, but with nothing usable this time (429, 5xx, an empty body)."""


class GttsEngine(TtsEngine):
    """Speaks through gTTS, caching each MP3 under ``cache_dir``.

    Args:
        cache_dir: where results are kept (``Settings.resolved_tts_cache_dir``).
        attempts: how many times one text is asked for before giving up.
        backoff_s: the wait before the second attempt; it doubles after each failure.
        tld: the Google Translate domain to use (``com``).
    """

    name = "gtts"

    def __init__(
        self, cache_dir: Path, *, attempts: int = 3, backoff_s: float = 2.0, tld: str = "com"
    ) -> None:
        self.cache_dir = cache_dir
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.tld = tld
        # gTTS spells some tags with capitals (fr-CA, zh-TW); we look up in lower case.
        self._codes = {code.lower(): code for code in tts_langs()}

    def languages(self) -> set[str]:
        """The languages gTTS lists (offline); whether Google answers is only known later."""
        return set(self._codes)

    async def synthesize(self, text: str, language: str, workdir: Path) -> Speech:
        """Speak ``text`` from the cache, or ask Google, backing off on 429 and empty bodies.

        Raises:
            EngineError: for an unknown language, an unreachable or refusing Google, or
                when every attempt was rate-limited or empty.
        """
        code = self._codes.get(language)
        if code is None:
            raise EngineError(self.name, language, "not a gTTS language")

        cached = self.cache_dir / f"{speech_key(self.name, language, text)}.mp3"
        if cached.is_file() and cached.stat().st_size > 0:
            logger.debug("gtts %s: cache hit %s", language, cached.name)
            return Speech(cached, self.name, language)

        audio = await self._fetch_with_retries(text, code, language)

        self._store(cached, audio)
        return Speech(cached, self.name, language)

    async def _fetch_with_retries(self, text: str, code: str, language: str) -> bytes:
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                logger.info("gtts %s: retry %d in %.1f s (%s)", language, attempt, delay, last)
                await asyncio.sleep(delay)

            started = time.monotonic()
            try:
                audio = await asyncio.to_thread(self._fetch, text, code)
            except _Retryable as problem:
                last = str(problem)
                continue

            logger.debug("gtts %s: %d bytes in %.2f s", language, len(audio), _since(started))
            return audio

        raise EngineError(self.name, language, f"{last} after {self.attempts} attempts")

    def _fetch(self, text: str, code: str) -> bytes:
        buffer = io.BytesIO()
        try:
            speaker = gTTS(text, lang=code, tld=self.tld, timeout=REQUEST_TIMEOUT_S)
            speaker.write_to_fp(buffer)
        except gTTSError as error:
            status = error.rsp.status_code if error.rsp is not None else None
            if status == TOO_MANY_REQUESTS or (status is not None and status >= 500):
                raise _Retryable(f"HTTP {status} from Google") from error
            # No answer at all (offline) or a refusal: retrying would only delay the fallback.
            raise EngineError(self.name, code.lower(), str(error)) from error
        except (AssertionError, ValueError) as error:
            # gTTS asserts on texts with nothing speakable and raises ValueError on languages.
            raise EngineError(
                self.name, code.lower(), f"gTTS refused the text: {error}"
            ) from error

        audio = buffer.getvalue()
        if not audio:
            raise _Retryable("an empty answer from Google")
        if not _looks_like_mp3(audio):
            raise EngineError(self.name, code.lower(), "Google's answer is not MP3 audio")
        return audio

    def _store(self, cached: Path, audio: bytes) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed, so a crash never leaves a truncated cache entry.
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.part")
        partial.write_bytes(audio)
        partial.replace(cached)


def _looks_like_mp3(audio: bytes) -> bool:
    return audio[:3] == b"ID3" or (len(audio) > 1 and audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0)


def _since(started: float) -> float:
    return time.monotonic() - started
