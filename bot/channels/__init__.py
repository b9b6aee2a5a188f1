"""The chat channels the engine speaks on: Telegram, the terminal (and WhatsApp later)."""
