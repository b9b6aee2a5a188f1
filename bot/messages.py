"""What travels between a channel and the engine, independent of any platform.

A channel builds an :class:`Incoming` from a platform update; the engine answers with a
list of :class:`Reply`. Texts are plain (never pre-escaped): each channel escapes them
for its own markup.
"""

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What a CFA sent."""

    TEXT = "text"
    COMMAND = "command"
    BUTTON = "button"
    LOCATION = "location"
    PHOTO = "photo"
    VOICE = "voice"
    EDITED = "edited"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class MediaFile:
    """A photo or voice note already saved under the media folder."""

    path: str
    mime_type: str
    size: int
    sha256: str
    source_id: str | None = None


@dataclass(frozen=True)
class Incoming:
    """One message from a person, as the engine sees it.

    Attributes:
        kind: what was sent.
        text: the typed text, a caption, or the command's arguments.
        command: the command without its slash (``start``), for ``Kind.COMMAND``.
        data: the button's payload, for ``Kind.BUTTON``.
        latitude, longitude: for ``Kind.LOCATION``.
        media: the stored file, for ``Kind.PHOTO`` and ``Kind.VOICE`` (None when the
            engine did not ask for one and it was not downloaded).
        what: a short name of an unsupported message (``sticker``, ``contact``).
        client_language: the language the person's app reports, if any.
        display_name: the name the platform shows for the person, if any.
    """

    kind: Kind
    text: str = ""
    command: str | None = None
    data: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    media: MediaFile | None = None
    what: str | None = None
    client_language: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class Button:
    """A choice the person can tap; ``data`` comes back in ``Incoming.data``."""

    label: str
    data: str


@dataclass
class Reply:
    """One message to send.

    Attributes:
        text: the body, plain text.
        title: an optional first line the channel may show in bold.
        buttons: rows of buttons.
        replace: the reply updates the message whose button was pressed (a toggled
            multiple-choice keyboard) instead of adding a new message, where the channel
            can do that.
    """

    text: str
    title: str | None = None
    buttons: list[list[Button]] = field(default_factory=list)
    replace: bool = False

    @property
    def flat_buttons(self) -> list[Button]:
        """Every button, row after row."""
        return [button for row in self.buttons for button in row]
