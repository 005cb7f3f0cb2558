"""The UI's pages and actions: a Starlette application over one database, read-only.

Pages are rendered on the server from the read-only SQLite connection (WAL: the writer
is never blocked); endpoints are plain functions, which Starlette runs in its thread
pool, so a slow query never stalls the event loop. Actions (cancel, signal) go through
a ``Client`` of the runtime that owns the database, made the first time one is asked for.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dolmen import storage as db
from dolmen.cli.render.text import ms, when
from dolmen.cli.ui import present, svg
from dolmen.cli.ui.guard import Csrf, TokenGuard
from dolmen.runtime.errors import DolmenError
from dolmen.runtime.status import Status
from dolmen.storage.browse import Filters, page, status_counts

HERE = Path(__file__).parent
PAGE_SIZE = 50
HISTORY_ROWS = 1_000


class UiConfig:
    """What one UI server serves, and how: its database, token, and whether it may act."""

    def __init__(
        self,
        db_path: str,
        *,
        token: str | None = None,
        read_only: bool = False,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.db_path, self.token, self.read_only = db_path, token, read_only
        self.client_factory = client_factory
        self._client: Any = None

    def has_client(self) -> bool:
        return self._client is not None

    def client(self) -> Any:
        if self._client is None:
            if self.client_factory is None:
                raise DolmenError("this UI has no runtime to act through")
            self._client = self.client_factory()
        return self._client


def build_app(config: UiConfig) -> Any:
    """The ASGI application (wrapped in the token guard when a token is set)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value a template shows is escaped unless marked safe
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(when=when, ms=ms, q=lambda s: quote(str(s), safe=""))
    csrf = Csrf()

    @contextlib.contextmanager
    def reading() -> Iterator[sqlite3.Connection]:
        conn = db.open_readonly(config.db_path)
        try:
            yield conn
        finally:
            conn.close()

    def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.update(csrf=csrf.value, read_only=config.read_only)
        page_text = env.get_template(template).render(**context)
        return HTMLResponse(page_text, status_code=status_code)

    def executions(request: Request) -> Response:
        filters, problem = parse_filters(request)
        order = "oldest" if request.query_params.get("order") == "oldest" else "newest"
        after = _int(request.query_params.get("after"))
        with reading() as conn:
            found = page(conn, filters, after=after, order=order, limit=PAGE_SIZE)
            counts = status_counts(conn, filters)
        params = {k: v for k, v in request.query_params.items() if k != "after" and v}
        next_url = None
        if found.next_after is not None:
            next_url = "/?" + urlencode({**params, "after": found.next_after})
        return render(
            "list.html",
            rows=found.rows,
            counts=counts,
            params=params,
            order=order,
            statuses=[str(s) for s in Status if s is not Status.MOVED],
            next_url=next_url,
            first_url="/?" + urlencode(params) if after is not None else None,
            problem=problem,
            counts_url="/api/counts?" + urlencode(params),
        )

    def counts_api(request: Request) -> Response:
        filters, _ = parse_filters(request)
        with reading() as conn:
            return JSONResponse(status_counts(conn, filters))

    def execution(request: Request) -> Response:
        execution_id = request.path_params["id"]
        from dolmen.storage.analytics.trace import build_trace

        with reading() as conn:
            row = db.get_execution(conn, execution_id)
            if row is None:
                return render("missing.html", 404, id=execution_id)
            events = db.load_history(conn, row.eid)
            tags = db.tags_of(conn, row.eid)
            family = db.descendants(conn, execution_id)
            histories = {r.id: (r, db.load_history(conn, r.eid)) for r in family[:200]}
        trace = build_trace(row, events)
        for child_row, child_events in histories.values():
            parent = _find(trace, child_row.parent_id)
            if parent is not None:
                parent.children[child_row.id] = build_trace(child_row, child_events)
        outcome = row.outcome()
        return render(
            "execution.html",
            row=row,
            tags=tags,
            events=len(events),
            input=present.input_of(events),
            result=present.show_payload(outcome.result) if row.status is Status.FINISHED else None,
            errors=present.error_chain(outcome.error),
            children=[r for r in family if r.parent_id == row.id][:200],
            history=present.history_lines(row, events, HISTORY_ROWS),
            more_history=max(len(events) - HISTORY_ROWS, 0),
            timeline=Markup(svg.timeline(trace)),  # noqa: S704 - built with escape() throughout
            critical=[s.position for s in trace.critical_path()],
            q=quote(row.id, safe=""),
        )

    def status_api(request: Request) -> Response:
        with reading() as conn:
            row = db.get_execution(conn, request.path_params["id"])
        if row is None:
            return JSONResponse({"error": "no such execution"}, status_code=404)
        return JSONResponse({"id": row.id, "status": str(row.status)})

    def stats(request: Request) -> Response:
        from dolmen.storage.analytics import Analytics

        with reading() as conn, Analytics(config.db_path, conn=conn) as session:
            report = session.report(slowest=10)
        return render("stats.html", report=report, charts=[Markup(c) for c in charts(report)])

    async def act(request: Request) -> Response:
        action = request.path_params["action"]
        execution_id = request.path_params["id"]
        if config.read_only:
            return render("message.html", 403, title="Read-only", text="This UI is read-only.")
        form = await request.form()
        if not csrf.valid(form.get("csrf")):
            return render("message.html", 403, title="Refused", text="Missing or stale form.")
        name, value_text = str(form.get("name", "")), str(form.get("value", ""))
        value: Any = None
        if action == "signal":
            if not name:
                return render("message.html", 400, title="Bad signal", text="A name is needed.")
            try:
                value = json.loads(value_text) if value_text.strip() else None
            except json.JSONDecodeError as exc:
                text = f"The value is not JSON: {exc}"
                return render("message.html", 400, title="Bad signal", text=text)
        elif action != "cancel":
            return render("message.html", 404, title="Unknown action", text=action)
        if form.get("confirmed") != "yes":
            return render(
                "confirm.html", action=action, id=execution_id, name=name, value=value_text
            )
        from starlette.concurrency import run_in_threadpool

        try:
            await run_in_threadpool(_perform, config, action, execution_id, name, value)
        except (DolmenError, ValueError) as exc:
            return render("message.html", 400, title=f"{action} failed", text=str(exc))
        return RedirectResponse(f"/x/{quote(execution_id, safe='')}", status_code=303)

    def metrics(request: Request) -> Response:
        from dolmen.cli.ui.metrics import exposition
        from dolmen.storage.tallies import tallies

        def read() -> Any:
            with reading() as conn:
                return tallies(conn)

        return Response(exposition(read), media_type="text/plain; version=0.0.4")

    routes = [
        Route("/metrics", metrics),
        Route("/", executions),
        Route("/api/counts", counts_api),
        Route("/api/status/{id:path}", status_api),
        Route("/x/{id:path}", execution),
        Route("/stats", stats),
        Route("/act/{action}/{id:path}", act, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.config = config
    return TokenGuard(app, config.token)


def _perform(config: UiConfig, action: str, execution_id: str, name: str, value: Any) -> None:
    handle = config.client().handle(execution_id)
    if action == "cancel":
        handle.cancel()
    else:
        handle.signal(name, value)


def _find(trace: Any, execution_id: str | None) -> Any:
    if execution_id is None:
        return None
    if trace.id == execution_id:
        return trace
    for child in trace.children.values():
        found = _find(child, execution_id)
        if found is not None:
            return found
    return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def parse_time(text: str | None) -> float | None:
    """``2026-12-02T12:30`` (a datetime-local field, local time) or epoch seconds."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return datetime.datetime.fromisoformat(text).timestamp()


def parse_filters(request: Request) -> tuple[Filters, str | None]:
    """The list's filters from the query string; a bad one is named, not raised."""
    q = request.query_params
    problem = None
    status = None
    if q.get("status"):
        try:
            status = Status(q["status"])
        except ValueError:
            problem = f"unknown status {q['status']!r}"
    try:
        since, until = parse_time(q.get("since")), parse_time(q.get("until"))
    except ValueError as exc:
        since = until = None
        problem = f"bad time: {exc}"
    tags = []
    for item in q.get("tags", "").replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            problem = f"tag {item!r}: write it as key=value"
            continue
        tags.append((key, value))
    filters = Filters(
        tags=tuple(tags),
        status=status,
        workflow=q.get("workflow") or None,
        search=q.get("q") or None,
        since=since,
        until=until,
    )
    return filters, problem


def charts(report: dict[str, Any]) -> list[str]:
    """The stats report's figures as SVG charts."""
    out = [
        svg.columns(
            "executions started per second",
            [(r["second"], r["started"]) for r in report["throughput"][-600:]],
        )
    ]
    for level in ("workflow", "activity"):
        rows = [r for r in report["latency"] if r["level"] == level][:15]
        for p in ("p50", "p95", "p99"):
            items = [(r["name"], r["end_to_end"][p] or 0.0) for r in rows]
            if items:
                out.append(svg.bars(f"{level} end-to-end latency {p}", items, unit="s"))
    failures = [(r["workflow"], r["failure_rate"] or 0.0) for r in report["workflows"][:15]]
    if failures:
        out.append(svg.bars("workflow failure rate", failures, unit="%"))
    retries = [(r["activity"], r["retry_rate"] or 0.0) for r in report["activities"][:15]]
    if retries:
        out.append(svg.bars("activity retry rate", retries, unit="%"))
    return out
