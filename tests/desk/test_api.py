"""The partner API on the real app and database: tokens, what it shows, what it never
shows, and its OpenAPI description."""

import hashlib
import json

from sqlalchemy import select
from typer.testing import Result

from core import figures
from core.desk.api import create_token, revoke_token
from core.models import ApiToken
from tests.desk.conftest import Desk
from tests.desk.planted import OUTCOME, SUMMARY, plant_personal_report
from tests.helpers import run_helpdesk


async def token_for(desk: Desk, name: str = "Partner NGO") -> tuple[int, str]:
    async with desk.services.db.session() as session:
        row, token = await create_token(session, name)
        return row.id, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_missing_unknown_and_revoked_tokens_are_refused(desk: Desk) -> None:
    token_id, token = await token_for(desk)
    async with desk.client() as client:
        missing = await client.get("/api/v1/reports")
        unknown = await client.get("/api/v1/reports", headers=bearer("hp_not-a-token"))
        basic = await client.get("/api/v1/reports", headers={"Authorization": "Basic eDp5"})
        allowed = await client.get("/api/v1/reports", headers=bearer(token))
        async with desk.services.db.session() as session:
            await revoke_token(session, token_id)
        revoked = await client.get("/api/v1/figures", headers=bearer(token))

    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert unknown.status_code == 401 and basic.status_code == 401
    assert allowed.status_code == 200
    assert revoked.status_code == 403


async def test_only_the_hash_of_a_token_is_stored_and_its_use_is_noted(sqlite_desk: Desk) -> None:
    desk = sqlite_desk
    _, token = await token_for(desk)
    async with desk.client() as client:
        await client.get("/api/v1/issues", headers=bearer(token))

    async with desk.services.db.session() as session:
        row = await session.scalar(select(ApiToken))
    assert row is not None and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps([row.name, row.token_hash])
    assert row.last_used_at is not None


async def test_reports_carry_the_summary_and_nothing_of_the_person(desk: Desk) -> None:
    planted = await plant_personal_report(desk.services)
    _, token = await token_for(desk)
    async with desk.client() as client:
        listed = await client.get("/api/v1/reports", headers=bearer(token))
        one = await client.get(f"/api/v1/reports/{planted.reference}", headers=bearer(token))
        gone = await client.get("/api/v1/reports/NP-1999-000001", headers=bearer(token))

    assert listed.status_code == 200 and planted.leaks(listed.text) == []
    page = listed.json()
    assert page["total"] == 2 and page["limit"] == 100
    by_reference = {item["reference"]: item for item in page["items"]}
    report = by_reference[planted.reference]
    assert set(report) == {
        "reference", "community", "category", "kind", "status", "submitted_at",
        "validated_at", "sensitive", "summary", "issue",
    }  # fmt: skip
    assert report["summary"] == SUMMARY and report["community"] == "dhading-gajuri-3"
    assert (report["status"], report["issue"]) == ("resolved", planted.issue_reference)
    hidden = by_reference[planted.sensitive_reference]
    assert hidden["sensitive"] is True and hidden["summary"] is None
    assert one.json() == report and gone.status_code == 404


async def test_reports_filter_by_status_and_community_and_page(sqlite_desk: Desk) -> None:
    desk = sqlite_desk
    planted = await plant_personal_report(desk.services)
    _, token = await token_for(desk)
    async with desk.client() as client:
        resolved = await client.get("/api/v1/reports?status=resolved", headers=bearer(token))
        elsewhere = await client.get(
            "/api/v1/reports?community=kailali-tikapur-5", headers=bearer(token)
        )
        second = await client.get("/api/v1/reports?limit=1&offset=1", headers=bearer(token))
        too_many = await client.get("/api/v1/reports?limit=100000", headers=bearer(token))

    assert [item["reference"] for item in resolved.json()["items"]] == [planted.reference]
    assert elsewhere.json() == {"total": 0, "limit": 100, "offset": 0, "items": []}
    assert second.json()["total"] == 2 and len(second.json()["items"]) == 1
    assert too_many.status_code == 422


async def test_issues_show_status_authority_dates_and_outcome(sqlite_desk: Desk) -> None:
    desk = sqlite_desk
    planted = await plant_personal_report(desk.services)
    _, token = await token_for(desk)
    async with desk.client() as client:
        response = await client.get("/api/v1/issues?status=resolved", headers=bearer(token))
        closed = await client.get("/api/v1/issues?status=closed", headers=bearer(token))

    assert planted.leaks(response.text) == []
    [issue] = response.json()["items"]
    assert issue["reference"] == planted.issue_reference
    assert issue["authority"] == "Gajuri Rural Municipality"
    assert issue["outcome"] == OUTCOME and issue["reports"] == [planted.reference]
    assert issue["resolved_at"] is not None and issue["community"] == "dhading-gajuri-3"
    assert "title" not in issue
    assert closed.json()["total"] == 0


async def test_figures_are_those_of_the_desk(sqlite_desk: Desk) -> None:
    desk = sqlite_desk
    await plant_personal_report(desk.services)
    _, token = await token_for(desk)
    months = figures.recent_months(desk.services.deployment, 2)
    async with desk.client() as client:
        response = await client.get(
            f"/api/v1/figures?from={months[0]}&to={months[1]}", headers=bearer(token)
        )
        wrong = await client.get("/api/v1/figures?from=2026-13", headers=bearer(token))

    async with desk.services.db.session() as session:
        expected = await figures.compute(session, desk.services.deployment, months)
    body = response.json()
    assert body["months"] == months and body["timezone"] == "Asia/Kathmandu"
    assert body["rows"] == json.loads(json.dumps(figures.records(expected)))
    total = next(r for r in body["rows"] if r["month"] == months[1] and r["community"] == "all")
    assert total["reports"] == 2 and total["issues_resolved"] == 1
    assert wrong.status_code == 422 and "YYYY-MM" in wrong.text


async def test_openapi_describes_the_partner_api_with_its_bearer_token(
    sqlite_desk: Desk,
) -> None:
    async with sqlite_desk.client() as client:
        schema = (await client.get("/openapi.json")).json()

    paths = set(schema["paths"])
    assert {"/api/v1/reports", "/api/v1/reports/{reference}", "/api/v1/issues"} <= paths
    assert "/api/v1/figures" in paths
    assert not any(path.startswith(("/desk/bulletins", "/desk/numbers")) for path in paths)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["partner token"]["scheme"] == "bearer"
    fields = set(schema["components"]["schemas"]["ReportOut"]["properties"])
    assert not fields & {"answers", "cfa", "name", "location_text", "location_lat", "channel"}


async def helpdesk(desk: Desk, *args: str) -> Result:
    """``helpdesk api-token ...`` in this process, on the desk's database."""
    return await run_helpdesk(desk.services.settings, "api-token", *args)


async def test_cli_creates_lists_and_revokes_tokens(sqlite_desk: Desk) -> None:
    created = await helpdesk(sqlite_desk, "create", "Ward office")
    token = created.stdout.split(": ", 1)[1].split()[0]
    async with sqlite_desk.client() as client:
        before = await client.get("/api/v1/issues", headers=bearer(token))
        listed = await helpdesk(sqlite_desk, "list")
        revoked = await helpdesk(sqlite_desk, "revoke", "1")
        after = await client.get("/api/v1/issues", headers=bearer(token))
    unknown = await helpdesk(sqlite_desk, "revoke", "99")

    assert created.exit_code == 0 and "token 1 for Ward office: hp_" in created.stdout
    assert before.status_code == 200
    assert "Ward office" in listed.stdout and token not in listed.stdout
    assert revoked.exit_code == 0 and after.status_code == 403
    assert unknown.exit_code == 1 and "no api token 99" in unknown.stderr
