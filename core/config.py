"""Settings, read once from the environment and an optional ``.env`` file.

Every setting is documented in the README's configuration table; the defaults need
nothing outside this folder (a SQLite file and media under ``var/``).
"""

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class WhatsAppTemplate(BaseModel):
    """An approved WhatsApp template: its name and the language code Meta approved it in.

    Meta's codes are its own list (``en``, ``fr``, ``hi``...); a Nepali text may have been
    approved under another code, so the code is set here rather than taken from the
    CFA's language.
    """

    name: str
    language: str


class Settings(BaseSettings):
    """The service's configuration; each field is ``HELPDESK_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="HELPDESK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = PROJECT_ROOT / "var"
    database_url: str | None = None
    media_dir: Path | None = None
    content_dir: Path = PROJECT_ROOT / "content"
    locales_dir: Path = PROJECT_ROOT / "locales"
    log_level: str = "INFO"

    web_host: str = "127.0.0.1"
    web_port: int = 8000
    trusted_proxies: str = ""

    telegram_token: SecretStr | None = None
    telegram_bot_username: str | None = None
    telegram_api_base: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None

    whatsapp_phone_number_id: str | None = None
    whatsapp_access_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_base: str = "https://graph.facebook.com"
    whatsapp_business_number: str | None = None
    # purpose (reminder, notification, broadcast) -> deployment language -> template
    whatsapp_templates: dict[str, dict[str, WhatsAppTemplate]] = {}
    whatsapp_overall_per_second: float = 20.0
    whatsapp_chat_per_second: float = 1 / 6

    tts_order: dict[str, list[str]] = {}
    tts_default_order: list[str] = ["espeak"]
    tts_cache_dir: Path | None = None
    gtts_attempts: int = 3
    gtts_backoff_s: float = 2.0
    espeak_binary: str = "espeak-ng"
    ffmpeg_binary: str | None = None

    invite_valid_days: int = 30
    sqlite_busy_timeout_ms: int = 10_000

    # Unset: this machine's own address, http://WEB_HOST:WEB_PORT.
    public_url: str = ""

    scheduler_enabled: bool = True
    scheduler_heartbeat_seconds: float = 300.0
    lease_seconds: float = 30.0

    outbox_enabled: bool = True
    outbox_overall_per_second: float = 30.0
    outbox_group_per_minute: float = 20.0
    outbox_chat_per_second: float = 1.0
    outbox_max_attempts: int = 8
    outbox_poll_seconds: float = 1.0

    @model_validator(mode="after")
    def _public_url_follows_the_port(self) -> "Settings":
        # Feed and download links must reach this service even when only the port moved.
        if not self.public_url:
            self.public_url = f"http://{self.web_host}:{self.web_port}"
        return self

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL in use: the configured one, or the SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'helpdesk.db'}"

    @property
    def whatsapp_enabled(self) -> bool:
        """Whether WhatsApp is configured: a number to send from, a token and the secret
        that signs every webhook (without it no delivery could be trusted)."""
        return bool(
            self.whatsapp_phone_number_id
            and self.whatsapp_access_token
            and self.whatsapp_app_secret
        )

    @property
    def resolved_tts_cache_dir(self) -> Path:
        """Where online text-to-speech results are cached."""
        return self.tts_cache_dir or self.data_dir / "tts-cache"

    def engine_order(self, language: str) -> list[str]:
        """The text-to-speech engines to try for ``language``, in order."""
        return self.tts_order.get(language, self.tts_default_order)

    @property
    def resolved_media_dir(self) -> Path:
        """Where photos, voice notes and rendered audio are kept."""
        return self.media_dir or self.data_dir / "media"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read on first use."""
    return Settings()
