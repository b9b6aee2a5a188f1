"""Every route of the app is either public by design or refuses whoever may not use it.

The routes are read from ``app.routes``, so a page added later is checked too: without a
session it must answer 303 to the sign-in page, 401 or 403, and signed in with a role
below the one it needs, 403.
"""

import re
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Route

from core.desk.auth import ROLES
from tests.desk.conftest import Desk, csrf_of

# Public by design: sign-in, health, the channels' webhooks, the stations' own endpoints
# and the partner API (which has its own tokens).
PUBLIC = re.compile(r"^(/desk/login|/healthz|/webhooks/.*|/stations/.*|/api/.*)$")
# FastAPI's own schema pages: they list the routes, no data (see the report).
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
REFUSED = {401, 403}


def _needed_role(dependant: Dependant) -> str | None:
    """The least role a route's dependencies ask for, None when none asks."""
    found: list[str] = []
    for dependency in dependant.dependencies:
        name = getattr(dependency.call, "__name__", "")
        if name == "require_user":
            found.append("viewer")
        elif name.startswith("require_") and name.removeprefix("require_") in ROLES:
            found.append(name.removeprefix("require_"))
        inner = _needed_role(dependency)
        if inner:
            found.append(inner)
    return max(found, key=ROLES.index) if found else None


def _protected(desk: Desk) -> list[tuple[str, str, APIRoute]]:
    """(method, path with its parameters filled, route) of every non-public route."""
    routes: list[tuple[str, str, APIRoute]] = []
    # Included routers are kept lazily in app.routes; this walks them with full paths.
    for context in iter_route_contexts(desk.app.routes):
        path, route = str(context.path), context.route
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        if PUBLIC.match(path) or path in FRAMEWORK:
            continue
        assert isinstance(route, APIRoute), f"{path} is not an API route"
        filled = re.sub(r"\{[^}]+\}", "1", path)
        routes.extend((method, filled, route) for method in sorted(context.methods or ()))
    return routes


async def test_every_protected_route_refuses_a_browser_without_a_session(
    sqlite_desk: Desk,
) -> None:
    client = sqlite_desk.client()
    protected = _protected(sqlite_desk)
    assert len(protected) >= 15, "the desk's routes are enumerated"

    for method, path, _route in protected:
        response = await client.request(method, path, data={"csrf": "x"})
        refused = response.status_code in REFUSED or (
            response.status_code == 303 and response.headers["location"].startswith("/desk/login")
        )
        assert refused, f"{method} {path} answered {response.status_code} without a session"


async def test_every_protected_route_refuses_a_role_below_its_own(sqlite_desk: Desk) -> None:
    clients = {role: await sqlite_desk.signed_in(role) for role in ROLES}
    tokens = {role: csrf_of((await c.get("/desk/")).text) for role, c in clients.items()}

    checked = 0
    for method, path, route in _protected(sqlite_desk):
        needed = _needed_role(route.dependant)
        assert needed is not None, f"{method} {route.path} asks for no staff role"
        for role in ROLES[: ROLES.index(needed)]:
            data: dict[str, Any] = {"csrf": tokens[role]}
            response = await clients[role].request(method, path, data=data)
            assert response.status_code == 403, f"{role} got {response.status_code} on {path}"
            checked += 1
    assert checked >= 10
