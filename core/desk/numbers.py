"""The desk's "by the numbers" page: the figures of :mod:`core.figures` per month and
community, charts drawn on the server with matplotlib, and CSV and XLSX exports.

Every role may see it, viewers included: the figures are counts, and the page, charts
and exports name communities, never a CFA. Charts label communities by code, since
matplotlib's default fonts have no Devanagari and would draw Nepali names as boxes.
"""

import asyncio
import io
import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from core import figures
from core.desk.auth import Viewer
from core.desk.templating import render
from core.services import Services

logger = logging.getLogger(__name__)

# Pages, not an API: kept out of the OpenAPI document, which describes /api/v1.
router = APIRouter(prefix="/desk/numbers", include_in_schema=False)

DEFAULT_MONTHS = 6
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Chart name: (title, measure of MonthFigures, drawn as bars or lines, as a percentage).
CHARTS: dict[str, tuple[str, str, str, bool]] = {
    "reports": ("Reports sent", "reports", "bars", False),
    "validated": ("Reports validated", "validated", "bars", False),
    "resolved": ("Issues resolved", "issues_resolved", "bars", False),
    "reached": ("People reached (groups + station audience)", "people_reached", "bars", False),
    "compliance": ("Monthly survey compliance", "compliance", "lines", True),
}

From = Annotated[str | None, Query(alias="from", description="first month, YYYY-MM")]
To = Annotated[str | None, Query(alias="to", description="last month, YYYY-MM")]


async def _counted(request: Request, first: str | None, last: str | None) -> figures.Figures:
    services: Services = request.app.state.services
    try:
        recent = figures.recent_months(services.deployment, DEFAULT_MONTHS)
        months = figures.month_range(first or recent[0], last or recent[-1])
    except figures.FiguresError as error:
        raise HTTPException(422, str(error)) from error
    async with services.db.session() as session:
        return await figures.compute(session, services.deployment, months)


@router.get("")
async def page(request: Request, user: Viewer, first: From = None, last: To = None) -> Response:
    """The figures as tables per month, the charts, and links to the exports."""
    counted = await _counted(request, first, last)
    query = f"from={counted.months[0]}&to={counted.months[-1]}"
    context: dict[str, Any] = {
        "figures": counted,
        "query": query,
        "charts": [(name, spec[0]) for name, spec in CHARTS.items()],
        "timezone": figures.programme_timezone(request.app.state.services.deployment),
    }
    return render(request, "numbers/numbers.html", context)


@router.get("/export.csv")
async def export_csv(
    request: Request, user: Viewer, first: From = None, last: To = None
) -> Response:
    """The figures as CSV, one row per month and community plus the programme's total."""
    counted = await _counted(request, first, last)
    logger.info(
        "figures csv for %s: %s to %s", user.username, counted.months[0], counted.months[-1]
    )
    return Response(
        figures.to_csv(counted),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": _attachment(counted, "csv")},
    )


@router.get("/export.xlsx")
async def export_xlsx(
    request: Request, user: Viewer, first: From = None, last: To = None
) -> Response:
    """The figures as an XLSX workbook with the same rows as the CSV."""
    counted = await _counted(request, first, last)
    logger.info(
        "figures xlsx for %s: %s to %s", user.username, counted.months[0], counted.months[-1]
    )
    return Response(
        await asyncio.to_thread(figures.to_xlsx, counted),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": _attachment(counted, "xlsx")},
    )


def _attachment(counted: figures.Figures, suffix: str) -> str:
    return f'attachment; filename="figures-{counted.months[0]}-to-{counted.months[-1]}.{suffix}"'


@router.get("/chart/{name}.png")
async def chart(
    request: Request, user: Viewer, name: str, first: From = None, last: To = None
) -> Response:
    """One chart as a PNG: a measure per month, a bar or line per community code."""
    spec = CHARTS.get(name)
    if spec is None:
        raise HTTPException(404, f"no chart {name} (one of {', '.join(CHARTS)})")
    counted = await _counted(request, first, last)
    png = await asyncio.to_thread(draw, counted, *spec)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


def draw(counted: figures.Figures, title: str, measure: str, style: str, percent: bool) -> bytes:
    """A chart of ``measure`` per month, one series per community, as PNG bytes."""
    # A Figure of its own on the Agg canvas: pyplot's global state and GUI backends are
    # neither thread-safe nor of any use in a web process without a display.
    figure = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    months = counted.months
    series = figures.per_community(counted, measure)
    positions = list(range(len(months)))

    if style == "bars":
        width = 0.8 / max(len(series), 1)
        for index, (code, values) in enumerate(series.items()):
            offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
            axes.bar(offsets, values, width=width, label=code)
        # Counts start at zero; with nothing to count matplotlib would centre on it.
        highest = max((v for values in series.values() for v in values), default=0.0)
        axes.set_ylim(0, max(highest * 1.1, 1))
    else:
        for code, values in series.items():
            axes.plot(positions, [v * 100 for v in values], marker="o", label=code)
        axes.set_ylim(0, 105)
        axes.set_ylabel("%")

    axes.set_title(title, fontsize=11)
    axes.set_xticks(positions, months)
    axes.grid(axis="y", alpha=0.3)
    if not percent:
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=8, loc="upper left", frameon=False)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
