"""A terminal chat on the same engine, for walking a survey without any chat platform.

Buttons are shown as ``[a] Label`` and chosen by typing their letter. A few colon
commands stand in for what a phone would send: ``:location 27.70 85.32``,
``:photo FILE``, ``:voice FILE``; ``:quit`` (or end of input) leaves.
"""

import asyncio
import logging
import mimetypes
import string
from collections.abc import Callable
from pathlib import Path

from bot.channels.base import read_typed
from bot.engine import Engine
from bot.media import save_media
from bot.messages import Button, Incoming, Kind, Reply

logger = logging.getLogger(__name__)

CHANNEL = "terminal"
LETTERS = string.ascii_lowercase


class TerminalChat:
    """Runs one person's conversation between standard input and output.

    Args:
        engine: the conversation engine.
        address: the terminal identity (``cfa-12``) the conversation belongs to.
        media_dir: where ``:photo`` and ``:voice`` files are copied.
        read: a function that returns the next line or raises EOFError (``input``).
        write: a function that prints a line (``print``).
    """

    def __init__(
        self,
        engine: Engine,
        address: str,
        media_dir: Path,
        read: Callable[[str], str] = input,
        write: Callable[[str], None] = print,
    ) -> None:
        self.engine = engine
        self.address = address
        self.media_dir = media_dir
        self.read = read
        self.write = write
        self.buttons: list[Button] = []

    async def send(self, incoming: Incoming) -> None:
        """Hand one message to the engine and print the replies."""
        replies = await self.engine.handle(CHANNEL, self.address, incoming)
        for reply in replies:
            self.show(reply)

    def run(self, runner: asyncio.Runner, first: Incoming | None = None) -> None:
        """Converse until ``:quit``, end of input or Ctrl-C.

        Input is read between engine steps, outside the event loop, so Ctrl-C at the
        prompt ends the chat at once; every answer given so far is already saved.
        """
        runner.run(self.send(first or read_typed("/start")))
        while True:
            try:
                line = self.read("> ")
            except (EOFError, KeyboardInterrupt):
                break
            if line.strip() in (":quit", ":q"):
                break
            incoming = runner.run(self.interpret(line))
            if incoming is not None:
                runner.run(self.send(incoming))
        self.write("\nBye. Your answers are saved; run the same command to continue.")

    async def interpret(self, line: str) -> Incoming | None:
        """Turn a typed line into what a phone would have sent."""
        stripped = line.strip()
        if len(stripped) == 1 and stripped in LETTERS[: len(self.buttons)]:
            return Incoming(Kind.BUTTON, data=self.buttons[LETTERS.index(stripped)].data)
        if stripped.startswith(":location"):
            return self._location(stripped)
        if stripped.startswith((":photo", ":voice")):
            return await self._media(stripped)
        return read_typed(line)

    def show(self, reply: Reply) -> None:
        """Print a reply with its buttons lettered."""
        self.write("")
        if reply.title:
            self.write(f"== {reply.title} ==")
        self.write(reply.text)
        # Letters always name the buttons of the latest reply, never older ones.
        self.buttons = reply.flat_buttons
        if reply.buttons:
            letters = iter(LETTERS)
            for row in reply.buttons:
                self.write("   ".join(f"[{next(letters)}] {button.label}" for button in row))

    def _location(self, line: str) -> Incoming | None:
        parts = line.replace(",", " ").split()[1:]
        try:
            latitude, longitude = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            self.write("Usage: :location LATITUDE LONGITUDE, e.g. :location 27.70 85.32")
            return None
        return Incoming(Kind.LOCATION, latitude=latitude, longitude=longitude)

    async def _media(self, line: str) -> Incoming | None:
        command, _, name = line.partition(" ")
        path = Path(name.strip()).expanduser()
        if not path.is_file():
            self.write(f"No such file: {name.strip() or '(none given)'}")
            return None

        kind = Kind.PHOTO if command == ":photo" else Kind.VOICE
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        wanted = "image/" if kind == Kind.PHOTO else "audio/"
        if not mime.startswith(wanted):
            self.write(f"{path.name} is {mime}; send {wanted}* files with {command}")
            return None
        # Like a channel, keep a file only when the current question asks for one.
        if not await self.engine.wants_media(CHANNEL, self.address, kind):
            return Incoming(kind)
        media = save_media(self.media_dir, path.read_bytes(), mime, source_id=path.name)
        return Incoming(kind, media=media)
