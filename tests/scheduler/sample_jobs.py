"""Jobs for scheduler tests: stored by import path like the real ones."""

from datetime import datetime

from scheduler.runtime import Runtime, Skipped, scheduled

seen: list[tuple[str, datetime]] = []


@scheduled
async def note(runtime: Runtime, fire_time: datetime, label: str) -> str:
    """Remember that it ran, for which fire."""
    seen.append((label, fire_time))
    return f"noted {label}"


@scheduled
async def nothing_to_do(runtime: Runtime, fire_time: datetime) -> str:
    raise Skipped("nothing due")
