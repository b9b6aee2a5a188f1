"""Bounds on the numbers the desk takes from a URL or a form.

SQLite and PostgreSQL hold 64-bit integers; a larger number given as an id or an offset
overflowed in the database driver and answered 500. Bounding it where it is read gives
the caller a 422 that says what was wrong instead.
"""

from typing import Annotated

from fastapi import Path

# The largest id a row can have in either database.
MAX_ID = 2**63 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="a row's id")]
