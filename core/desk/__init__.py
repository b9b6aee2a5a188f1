"""The staff desk: server-rendered pages where staff review reports, follow issues with
the authorities and compose bulletins.

Every page module has its own ``router``; :func:`install` gathers them into the app
with the handler that shows a too-low role as a 403 page. Pages depend on
:func:`core.desk.auth.require_user` or :func:`core.desk.auth.require_role`, which also
check the CSRF token of every POST, and render with
:func:`core.desk.templating.render` on ``templates/base.html``.
"""

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from core.desk.auth import Forbidden
from core.desk.templating import render

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the desk's pages to ``app``."""
    # Imported here, not with the package: the bulletin and numbers pages pull in the
    # audio pipeline and matplotlib, which `helpdesk staff ...` (importing core.desk.auth)
    # would otherwise wait a second for.
    from core.desk import access, api, bulletins, issues, numbers, review, staff

    # Each page module's router, in the order of the desk's navigation.
    for pages in (access, review, issues, staff, bulletins, numbers, api):
        app.include_router(pages.router)
    app.add_exception_handler(Forbidden, _forbidden)


async def _forbidden(request: Request, error: Exception) -> HTMLResponse:
    assert isinstance(error, Forbidden)
    return render(request, "forbidden.html", {"needed": error.needed}, status=403)
