"""What every text-to-speech engine provides, and the speech it returns."""

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class Speech:
    """One text spoken by one engine.

    Attributes:
        path: an audio file in any format ffmpeg decodes (WAV, MP3, OGG...).
        engine: the name of the engine that produced it.
        language: the language it is spoken in.
    """

    path: Path
    engine: str
    language: str


class TtsEngine(ABC):
    """A way of turning a text in one language into speech.

    An engine only claims the languages it really speaks: :class:`audio.voices.Voices`
    relies on that to never read a text with another language's voice.
    """

    name: ClassVar[str]

    @abstractmethod
    def languages(self) -> set[str]:
        """The lower-case language tags this engine speaks on this machine, such as ``ne``."""

    @abstractmethod
    async def synthesize(self, text: str, language: str, workdir: Path) -> Speech:
        """Speak ``text`` in ``language``.

        Expects:
            a non-empty text and a language in :meth:`languages`; ``workdir`` may be used
            for output files and exists or can be created.

        Returns:
            the speech, as a file that lives at least as long as ``workdir``.

        Raises:
            EngineError: when this engine cannot speak this text now.
        """


def speech_key(engine: str, language: str, text: str) -> str:
    """A stable file-name key for one text spoken by one engine in one language."""
    digest = hashlib.sha256()
    for part in (engine, language, text):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()
