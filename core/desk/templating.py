"""Rendering desk pages: one Jinja2 environment, and what every page is given.

Every template gets ``user`` (the signed-in :class:`core.models.StaffUser`, or None),
``csrf_token()`` for its forms, ``can(role)`` to show only what the user may do, and
``nav``: the sections of the desk, for ``base.html``'s navigation. The ``path_part``
filter quotes a value for one segment of a URL's path.
"""

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from core.desk.auth import CSRF_FIELD, csrf_token, has_role
from core.models import StaffUser

TEMPLATES_DIR = Path(__file__).parent / "templates"

# (path, label, least role): the desk's sections; a section is shown to whom it serves.
NAV: list[tuple[str, str, str]] = [
    ("/desk/", "Review", "viewer"),
    ("/desk/issues", "Issues", "viewer"),
    ("/desk/bulletins", "Bulletins", "viewer"),
    ("/desk/numbers", "Numbers", "viewer"),
    ("/desk/staff", "Staff", "admin"),
]

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def path_part(value: object) -> str:
    """``value`` quoted as one segment of a URL's path, ``/`` included.

    Jinja's own ``urlencode`` leaves ``/`` as it is, so a username or reference holding
    one would still split the path and reach another route.
    """
    return quote(str(value), safe="")


templates.env.filters["path_part"] = path_part


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """Render ``template`` with the desk's common context and ``context``."""
    user: StaffUser | None = getattr(request.state, "user", None)

    def can(role: str) -> bool:
        return user is not None and has_role(user, role)

    common: dict[str, Any] = {
        "user": user,
        "csrf_field": CSRF_FIELD,
        "csrf_token": lambda: csrf_token(request),
        "can": can,
        "nav": [(path, label) for path, label, role in NAV if can(role)],
        "current": request.url.path,
    }
    return templates.TemplateResponse(
        request, template, {**common, **(context or {})}, status_code=status
    )
