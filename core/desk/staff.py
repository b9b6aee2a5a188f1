"""The admin's page of staff accounts: who has access, adding an account, disabling one."""

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from core.desk.auth import ROLES, USERNAME_RULE, Admin, create_user, disable_user
from core.desk.templating import render
from core.errors import HelpdeskError
from core.models import StaffUser
from core.services import Services

logger = logging.getLogger(__name__)

router = APIRouter()


@router.get("/desk/staff")
async def staff_page(request: Request, user: Admin) -> Response:
    """Every staff account, and the form that adds one."""
    return await _page(request)


async def _page(request: Request, error: str | None = None, code: int = 200) -> Response:
    services: Services = request.app.state.services
    async with services.db.session() as session:
        users = list(await session.scalars(select(StaffUser).order_by(StaffUser.username)))
    notice = request.query_params.get("done")
    context = {
        "users": users,
        "roles": ROLES,
        "username_rule": USERNAME_RULE,
        "error": error,
        "notice": notice,
    }
    return render(request, "staff.html", context, status=code)


@router.post("/desk/staff")
async def staff_add(
    request: Request,
    user: Admin,
    username: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "viewer",
    password: Annotated[str, Form()] = "",
) -> Response:
    """Add an account with a first password the new user is given in person."""
    services: Services = request.app.state.services
    try:
        async with services.db.session() as session:
            await create_user(session, username=username, name=name, role=role, password=password)
    except HelpdeskError as error:
        logger.info("staff user %r not added for %s: %s", username, user.username, error)
        return await _page(request, error=str(error), code=400)
    logger.info("staff user %s added by %s", username, user.username)
    return _done(f"added {username.strip().lower()}")


# ":path" so that an account made before usernames were checked, with a "/" in its name,
# can still be disabled: its quoted "/" arrives decoded and would not match a segment.
@router.post("/desk/staff/{username:path}/disable")
async def staff_disable(request: Request, user: Admin, username: str) -> Response:
    """Disable an account and end its sessions (not one's own: an admin must remain)."""
    if username == user.username:
        return await _page(request, error="you cannot disable your own account", code=400)
    services: Services = request.app.state.services
    try:
        async with services.db.session() as session:
            await disable_user(session, username)
    except HelpdeskError as error:
        return await _page(request, error=str(error), code=400)
    logger.info("staff user %s disabled by %s", username, user.username)
    return _done(f"disabled {username}")


def _done(notice: str) -> RedirectResponse:
    return RedirectResponse(f"/desk/staff?done={quote(notice, safe='')}", status_code=303)
