"""Fakes of external services (Telegram Bot API, ...) used by tests and benchmarks."""
