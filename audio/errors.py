"""The audio package's errors: each carries what a person needs to act on it."""

from collections.abc import Sequence

from audio.languages import language_name
from core.errors import HelpdeskError


class AudioError(HelpdeskError):
    """A bulletin could not be spoken, mixed, measured or encoded."""


class NoVoiceError(AudioError):
    """No engine on this machine could speak a text in its language.

    Args:
        language: the language code the text is written in, such as ``bm``.
        tried: the engines considered, in order.
    """

    def __init__(self, language: str, tried: Sequence[str]) -> None:
        self.language = language
        self.tried = list(tried)
        name = language_name(language)
        engines = ", ".join(self.tried) or "none configured"
        super().__init__(
            f"No text-to-speech engine speaks {name} ({language}) here (tried: {engines}). "
            f"Record this bulletin in {name} instead."
        )


class EngineError(AudioError):
    """One engine failed to speak one text.

    Args:
        engine: the engine's name, such as ``gtts``.
        language: the language it was asked to speak.
        reason: what went wrong, in words a station engineer can act on.
    """

    def __init__(self, engine: str, language: str, reason: str) -> None:
        self.engine = engine
        self.language = language
        self.reason = reason
        super().__init__(f"{engine} could not speak {language}: {reason}")


class FfmpegError(AudioError):
    """ffmpeg exited with an error or could not be started.

    Args:
        command: the full command line that was run.
        stderr: the end of what ffmpeg wrote to its error stream.
        returncode: its exit status, or ``None`` when it could not be started.
    """

    def __init__(self, command: Sequence[str], stderr: str, returncode: int | None) -> None:
        self.command = list(command)
        self.stderr = stderr
        self.returncode = returncode
        status = "could not start" if returncode is None else f"exited with {returncode}"
        super().__init__(f"ffmpeg {status}: {stderr.strip()} (command: {' '.join(command)})")
