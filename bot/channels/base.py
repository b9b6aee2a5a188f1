"""What every channel shares: reading typed commands and cutting long texts."""

import html
import re

from bot.messages import Incoming, Kind

COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]+)?(?:\s+(.*))?$", re.DOTALL)


def read_typed(
    text: str, *, client_language: str | None = None, display_name: str | None = None
) -> Incoming:
    """A typed message: ``/command args`` (also ``/command@bot``) or plain text."""
    match = COMMAND.match(text.strip())
    if match:
        return Incoming(
            Kind.COMMAND,
            command=match.group(1).lower(),
            text=(match.group(2) or "").strip(),
            client_language=client_language,
            display_name=display_name,
        )
    return Incoming(
        Kind.TEXT, text=text, client_language=client_language, display_name=display_name
    )


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: in UTF-16 code units (an emoji can count two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-16 units.

    Cuts fall on a paragraph break if there is one in the second half of the piece, else
    on a line break, else on a space, and only as a last resort inside a word, so a
    reader on a small screen gets whole paragraphs.
    """
    pieces: list[str] = []
    rest = text
    while utf16_length(rest) > limit:
        window = _prefix_within(rest, limit)
        cut = _best_cut(window)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def split_escaped(text: str, limit: int) -> list[str]:
    """``text`` cut between paragraphs into pieces that each fit in ``limit`` UTF-16
    units once HTML-escaped (``&`` is five characters in Telegram's HTML).

    The plain text is cut and each piece is escaped by whoever sends it, so a cut never
    falls inside a tag or an entity.
    """
    return _escaped_within(text, limit, limit)


def _escaped_within(text: str, limit: int, budget: int) -> list[str]:
    # Escaping only lengthens a text, so a piece too long once escaped is cut shorter.
    pieces: list[str] = []
    for piece in split_text(text, budget):
        if utf16_length(html.escape(piece, quote=False)) <= limit or budget <= 64:
            pieces.append(piece)
        else:
            pieces.extend(_escaped_within(piece, limit, budget * 3 // 4))
    return pieces


def _prefix_within(text: str, limit: int) -> str:
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def _best_cut(window: str) -> int:
    for separator in ("\n\n", "\n", " "):
        position = window.rfind(separator)
        if position >= len(window) // 2:
            return position + len(separator)
    return len(window)
