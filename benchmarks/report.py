"""The Markdown report: the targets table first, then one section per workload family."""

from __future__ import annotations

from typing import Any

from benchmarks.common import Row, fmt_seconds

# Obelisk's published best times (Rust, SQLite, 2 vCPU t2.medium), for reference only:
# a different machine, so these are never used for met / missed.
OBELISK = {
    "10x40.seq": 0.226,
    "33x10.seq": 0.220,
    "38x100.seq": 15.5,
    "38x100.par": 7.65,
    "10x1000.par": 4.37,
}
TASKER_STAGE_SECONDS = 0.064


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _measured(t: dict[str, Any]) -> str:
    value, unit = t["measured"], t["unit"]
    if value is None:
        return "not run"
    if unit == "s":
        return fmt_seconds(value)
    if unit == "bytes":
        return f"{value:,.0f} B"
    if unit.startswith("x"):
        return f"{value:.3f} {unit}"
    return f"{_num(value)} {unit}"


def _target(t: dict[str, Any]) -> str:
    op = "≤" if t["op"] == "<=" else "≥"
    value, unit = t["target"], t["unit"]
    if unit == "s":
        return f"{op} {fmt_seconds(value)}"
    if unit == "bytes":
        return f"{op} {value:,.0f} B"
    if unit.startswith("x"):
        return f"{op} {value:.2f} {unit}"
    return f"{op} {_num(value)} {unit}"


def targets_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| measure | measured | target | measured / target | result | anchors | measured on |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in rows:
        result = "not run" if t["met"] is None else "met" if t["met"] else "**missed**"
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.3g}"
        lines.append(
            f"| {t['measure']} | {_measured(t)} | {_target(t)} | {ratio} | {result} | "
            f"{t['anchor']} | {t['row']} |"
        )
    met = sum(t["met"] is True for t in rows)
    missed = sum(t["met"] is False for t in rows)
    lines.append("")
    lines.append(f"{met} met, {missed} missed, {len(rows) - met - missed} not run.")
    return "\n".join(lines)


def _rows(result: dict[str, Any], family: str) -> list[Row]:
    return result["results"].get(family, [])


def _by_id(result: dict[str, Any]) -> dict[str, Row]:
    return {r["id"]: r for rows in result["results"].values() for r in rows if "id" in r}


def _fibo(result: dict[str, Any]) -> list[str]:
    rows = _rows(result, "fibo")
    if not rows:
        return []
    dbos = {
        (r["key"], r["variant"]): r
        for r in _rows(result, "peers")
        if r["id"].startswith("dbos.fibo")
    }
    out = [
        "## 1. Obelisk's fibo tables",
        "",
        "Sequential rows: one workflow awaiting k activities in turn; parallel rows: one "
        "workflow submitting k activities to a join set. The bare baseline is the same kernel "
        "in a plain loop (sequential) or mapped over a pool of `cores` threads / processes "
        "(parallel), interleaved with the dolmen runs; medians. DBOS ran the same kernels in "
        "the same run; Obelisk's numbers are its author's published bests on another machine "
        "(2 vCPU t2.medium), for reference only.",
        "",
        "| workload | dolmen | bare (same run) | dolmen / bare | runs; bare spread | "
        "overhead per activity | DBOS (same run) | Obelisk best (published) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peer = dbos.get((r["key"], r["variant"]))
        peer_text = "-"
        if peer is not None and (peer["n"], peer["iterations"]) == (r["n"], r["iterations"]):
            peer_text = f"{fmt_seconds(peer['seconds'])} ({peer['seconds'] / r['seconds']:.1f}x)"
        same_size = (
            f"{r['key'].replace('.seq', '').replace('.par', '')}" == f"{r['n']}x{r['iterations']}"
        )
        obelisk = fmt_seconds(OBELISK[r["key"]]) if same_size else "-"
        per = r.get("overhead_per_activity_seconds")
        per_text = fmt_seconds(per) if per is not None else "-"
        bares = r.get("bare_samples") or [r["bare_seconds"]]
        spread = (max(bares) - min(bares)) / r["bare_seconds"] if r["bare_seconds"] else 0
        out.append(
            f"| {r['workload']} | {fmt_seconds(r['seconds'])} | {fmt_seconds(r['bare_seconds'])} "
            f"({r['bare_kind']}) | {r['ratio_to_bare']:.3f} | {len(r.get('samples', []))}; "
            f"{spread:.0%} | {per_text} | {peer_text} | {obelisk} |"
        )
    out += [
        "",
        "Runs: dolmen runs, each between two bare runs; bare spread: (slowest - fastest bare "
        "run) / median, the machine's drift during the row. A ratio below 1.0 means the machine "
        "ran faster during the dolmen runs than during the bare ones: drift, not a speed-up. "
        "DBOS column: DBOS's time (DBOS time / dolmen time in brackets).",
        "",
    ]
    native = _rows(result, "native")
    if native:
        out += [
            "Native pool efficiency (bare pool of the same size / dolmen; 1.0 = no overhead):",
            "",
            "| workload | dolmen | bare pool | efficiency |",
            "|---|---|---|---|",
        ]
        for r in native:
            out.append(
                f"| {r['workload']} | {fmt_seconds(r['seconds'])} | "
                f"{fmt_seconds(r['bare_seconds'])} | {r['efficiency']:.3f} |"
            )
        out.append("")
    return out


def _durable(result: dict[str, Any]) -> list[str]:
    rows = _rows(result, "durable")
    if not rows:
        return []
    peers = [r for r in _rows(result, "peers") if r["id"].startswith("dbos.durable")]
    out = [
        "## 2. Durable-execution cost (N no-op steps)",
        "",
        "Statements and commits are counted by dolmen's group-commit writer (INSERT, UPDATE, "
        "BEGIN, COMMIT; the host also runs one indexed SELECT per start to check the id, not "
        "counted). For DBOS they are counted with SQLAlchemy engine events: every statement it "
        "sends, reads included (writes in brackets), and a commit counts when its transaction "
        "wrote. Bytes: dbstat over every table and index, before and after.",
        "",
        "Fit, statements per workflow = a + b x N (at the highest concurrency):",
        "",
        "| executor | a | b (per step) | commits per workflow (a + b x N) | bytes per workflow "
        "(a + b x N) |",
        "|---|---|---|---|---|",
    ]
    for r in [x for x in rows if x["id"].startswith("durable.fit")]:
        out.append(
            f"| {r['executor']} | {r['statements_a']:.2f} | {r['statements_b']:.3f} | "
            f"{r['commits_a']:.3f} + {r['commits_b']:.4f} N | {r['bytes_a']:.0f} + "
            f"{r['bytes_b']:.0f} N |"
        )
    for r in [x for x in peers if x["id"] == "dbos.durable.fit"]:
        out.append(f"| DBOS | {r['statements_a']:.2f} | {r['statements_b']:.3f} | - | - |")
    out += [
        "",
        "Under load (waves of C workflows started together):",
        "",
        "| N | executor | C | workflows/s | steps/s | statements / workflow | statements / step "
        "| commits / step | bytes / workflow |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    tp = [r for r in rows if r["id"].startswith("durable.tp")]
    for r in tp:
        c = f"{r['concurrency']:,} at once" if r["id"].endswith(".all") else r["concurrency"]
        out.append(
            f"| {r['steps']} | {r['executor']} | {c} | "
            f"{_num(r['workflows_per_second'])} | {_num(r['steps_per_second'])} | "
            f"{r['sql_statements_per_workflow']:.2f} | {r['sql_statements_per_step']:.3f} | "
            f"{r['commits_per_step']:.4f} | {r['stored_bytes_per_workflow']:,.0f} |"
        )
    for r in [x for x in peers if x["id"].startswith("dbos.durable.tp")]:
        out.append(
            f"| {r['steps']} | DBOS | {r['concurrency']} | {_num(r['workflows_per_second'])} | "
            f"{_num(r['workflows_per_second'] * r['steps'])} | "
            f"{r['sql_statements_per_workflow']:.2f} ({r['sql_writes_per_workflow']:.1f}) | "
            f"{r['sql_statements_per_step']:.3f} | {r['commits_per_step']:.4f} | "
            f"{r['stored_bytes_per_workflow']:,.0f} |"
        )
    out += [
        "",
        "One workflow at a time (end to end through Ray; the Ray round trip to the host, "
        "measured interleaved, is the floor):",
        "",
        "| N | executor | p50 | p99 | Ray round trip p50 | statements / workflow | commits / step "
        "| bare step bodies |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in [x for x in rows if x["id"].startswith("durable.lat")]:
        out.append(
            f"| {r['steps']} | {r['executor']} | {fmt_seconds(r['p50_seconds'])} | "
            f"{fmt_seconds(r['p99_seconds'])} | {fmt_seconds(r['ray_roundtrip_p50_seconds'])} | "
            f"{r['sql_statements_per_workflow']:.2f} | {r['commits_per_step']:.3f} | "
            f"{fmt_seconds(r['bare_seconds'])} |"
        )
    for r in [x for x in peers if x["id"].startswith("dbos.durable.lat")]:
        out.append(
            f"| {r['steps']} | DBOS | {fmt_seconds(r['p50_seconds'])} | "
            f"{fmt_seconds(r['p99_seconds'])} | - | - | - | {fmt_seconds(r['bare_seconds'])} |"
        )
    out.append("")
    return out


def _dags(result: dict[str, Any]) -> list[str]:
    rows = _rows(result, "dags")
    if not rows:
        return []
    out = [
        "## 3. DAG shapes (Tasker study)",
        "",
        "Per stage: from the history's own timestamps, issue of a stage's first command to the "
        "issue of the next stage's (or of the return), so each stage includes making its "
        f"results durable. Tasker reports ~{TASKER_STAGE_SECONDS * 1000:.0f} ms per stage.",
        "",
        "| shape | steps run / defined | stages | p50 | p95 | stage p50 | stage p95 | "
        "p50 per stage | bare (same bodies) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = ", ".join(fmt_seconds(s) for s in r["per_stage_p50_seconds"])
        out.append(
            f"| {r['workload']} | {r['steps_run']} / {r['steps_defined']} | {r['stages']} | "
            f"{fmt_seconds(r['p50_seconds'])} | {fmt_seconds(r['p95_seconds'])} | "
            f"{fmt_seconds(r['stage_p50_seconds'])} | {fmt_seconds(r['stage_p95_seconds'])} | "
            f"{per} | {fmt_seconds(r['bare_seconds'])} |"
        )
    out.append("")
    return out


def _scaling(result: dict[str, Any]) -> list[str]:
    rows = _rows(result, "scaling")
    if not rows:
        return []
    by = {(r["kind"], r["clients"]): r for r in rows}
    clients = sorted({r["clients"] for r in rows})
    out = [
        "## 4. Flowable-style scaling",
        "",
        "Each client is a driver thread calling `client.run` in a loop; instances per second "
        "over a fixed time.",
        "",
        "| clients | empty: instances/s | empty: p50 | 10 no-op activities: instances/s | "
        "10 activities: p50 | Ray round trip (bare) |",
        "|---|---|---|---|---|---|",
    ]
    for c in clients:
        e, s = by.get(("empty", c)), by.get(("steps10", c))
        out.append(
            f"| {c} | {_num(e['instances_per_second']) if e else '-'} | "
            f"{fmt_seconds(e['p50_seconds']) if e else '-'} | "
            f"{_num(s['instances_per_second']) if s else '-'} | "
            f"{fmt_seconds(s['p50_seconds']) if s else '-'} | "
            f"{fmt_seconds((e or s)['bare_seconds'])} |"
        )
    out.append("")
    return out


def _recovery(result: dict[str, Any]) -> list[str]:
    rows = _rows(result, "recovery")
    if not rows:
        return []
    r = rows[0]
    return [
        "## 5. Recovery",
        "",
        f"{r['executions']:,} executions blocked on a signal; the host process was killed "
        "(`ray.kill`, no restart); a new client on the same database started a new host, "
        "which replayed every unfinished execution.",
        "",
        "| executions | new client until all loaded | bare: new client, empty database | "
        "per execution | signal all, one call each | signal until all finished |",
        "|---|---|---|---|---|---|",
        f"| {r['executions']:,} | {fmt_seconds(r['resume_seconds'])} | "
        f"{fmt_seconds(r['bare_seconds'])} | {fmt_seconds(r['resume_per_execution_seconds'])} | "
        f"{fmt_seconds(r['signal_seconds'])} | {fmt_seconds(r['signal_and_finish_seconds'])} |",
        "",
    ]


def _peers(result: dict[str, Any]) -> list[str]:
    rows = _rows(result, "peers")
    meta = next((r for r in rows if r["id"] == "dbos.meta"), None)
    if meta is None:
        return []
    out = ["## 6. Peers", ""]
    if meta["status"] != "measured":
        return [*out, f"DBOS: {meta['status']}: {meta.get('reason', '')}", ""]
    dur = meta.get("durability", {})
    out += [
        f"DBOS {meta.get('version')} (SQLAlchemy {meta.get('sqlalchemy')}), SQLite system "
        f"database, journal_mode={dur.get('journal_mode')}, synchronous={dur.get('synchronous')}"
        f", queue polling every {meta.get('queue_polling_interval_seconds')} s; in its own "
        "process, same run, same kernels. Its rows appear beside dolmen's in sections 1 and 2.",
        "",
    ]
    ids = _by_id(result)
    pairs = [
        ("dbos.durable.lat.n3", "durable.lat.thread.n3", "p50_seconds", "p50, one 3-step workflow"),
        (
            "dbos.durable.lat.n10",
            "durable.lat.thread.n10",
            "p50_seconds",
            "p50, one 10-step workflow",
        ),
    ]
    lines = [
        "dolmen better by: DBOS time / dolmen time, or dolmen throughput / DBOS throughput. "
        "The two ran minutes apart, so for the long fibo rows compare each one's ratio to its "
        "own bare baseline (measured beside it), which the machine's drift does not move.",
        "",
        "| measure | dolmen | DBOS | dolmen better by | dolmen / its bare | DBOS / its bare |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["id"].startswith("dbos.fibo"):
            mine = ids.get(r["id"].removeprefix("dbos."))
            if mine and (mine["n"], mine["iterations"]) == (r["n"], r["iterations"]):
                lines.append(
                    f"| {mine['workload']} | {fmt_seconds(mine['seconds'])} | "
                    f"{fmt_seconds(r['seconds'])} | {r['seconds'] / mine['seconds']:.2f}x | "
                    f"{mine['ratio_to_bare']:.3f} | {r['ratio_to_bare']:.3f} |"
                )
    for peer_id, mine_id, key, label in pairs:
        p, m = ids.get(peer_id), ids.get(mine_id)
        if p and m:
            lines.append(
                f"| {label} (thread steps) | {fmt_seconds(m[key])} | {fmt_seconds(p[key])} | "
                f"{p[key] / m[key]:.1f}x | - | - |"
            )
    best = {}
    for r in ids.values():
        rid = r.get("id", "")
        if rid.startswith(("durable.tp.thread.n3.", "dbos.durable.tp.n3.")) and r.get(
            "concurrency"
        ) in (16, 64, 128):
            who = "dbos" if rid.startswith("dbos") else "dolmen"
            best[who] = max(best.get(who, 0.0), r["workflows_per_second"])
    if len(best) == 2:
        lines.append(
            f"| throughput, 3-step workflows (best of 16/64/128, thread steps) | "
            f"{_num(best['dolmen'])}/s | {_num(best['dbos'])}/s | "
            f"{best['dolmen'] / best['dbos']:.0f}x | - | - |"
        )
    return [*out, *lines, ""]


def _module(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(f"benchmarks.{name}")
    except ImportError:
        return None


def _loads(load: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in load.items()) or "unknown"


def markdown(result: dict[str, Any], charts: dict[str, str]) -> str:
    m, v = result["machine"], result["versions"]
    title = "dolmen benchmarks" + (" (quick sizes)" if result["quick"] else "")
    head = [
        f"# {title}, {result['date'][:10]}",
        "",
        f"`{result['command']}` took {result['duration_seconds'] / 60:.1f} min.",
        "",
        f"- Machine: {m['cores']} cores ({m.get('cpu_model') or 'unknown CPU'}), "
        f"{(m.get('memory_bytes') or 0) / 2**30:.0f} GiB, {m['platform']}",
        f"- Versions: Python {v['python']}, dolmen {v['dolmen']} (kernel: {v['dolmen_kernel']}), "
        f"Ray {v['ray']}, SQLite {v['sqlite']}, DBOS {v.get('dbos') or 'not installed'}",
        f"- Load: 1-minute load average {_loads(m.get('load_average_1min', {}))} "
        "(anything above 0 is other work sharing the cores during the run)",
        f"- Durability: synchronous={result['durability']['synchronous']}, "
        f"{result['durability']['storage']}",
        "- Method: every measurement is interleaved with its bare baseline (bare, measured, "
        "bare, ...) in the same run and medians are kept, because this machine's speed drifts "
        "by up to +-20% between runs. Ratios to bare hold across machines; absolute times are "
        "this machine's.",
        f"- Priority: Ray workers (dolmen's host among them) ran at nice "
        f"{result.get('ray_worker_niceness', 15)} (Ray's default is 15), the driver and its bare "
        "baselines at 0.",
        "",
    ]
    if result.get("errors"):
        head += [
            "**Failed steps:** "
            + "; ".join(f"{e['family']}/{e['step']}: {e['error']}" for e in result["errors"]),
            "",
        ]
    body = [
        '## Targets (DESIGN.md, "Anchors and targets")',
        "",
        targets_table(result["targets"]),
        "",
    ]
    if "targets" in charts:
        body += [f"![targets]({charts['targets']})", ""]
    sections = [
        (_fibo, "fibo"),
        (_durable, "durable"),
        (_dags, "dags"),
        (_scaling, "scaling"),
        (_recovery, None),
        (_peers, None),
    ]
    for render, chart in sections:
        lines = render(result)
        if lines and chart and chart in charts:
            lines += [f"![{chart}]({charts[chart]})", ""]
        body += lines
    extra = [
        name
        for name in result["results"]
        if name not in {"fibo", "native", "durable", "dags", "scaling", "recovery", "peers"}
    ]
    for name in extra:
        module = _module(name)
        if module is not None and hasattr(module, "markdown"):
            # The module's own table, given its rows as its `run` returned them.
            own = [
                {k: v for k, v in r.items() if v is not None or k != "bare_seconds"}
                for r in result["results"][name]
            ]
            body += [f"## {name} (`benchmarks/{name}.py`)", "", module.markdown(own), ""]
            continue
        body += [f"## {name}", "", "| workload | measured | bare (same run) |", "|---|---|---|"]
        for r in result["results"][name]:
            values = ", ".join(
                f"{k}={_num(val)}"
                for k, val in r.items()
                if isinstance(val, int | float)
                and not isinstance(val, bool)
                and k != "bare_seconds"
            )
            bare = fmt_seconds(r.get("bare_seconds"))
            body.append(f"| {r.get('workload', r.get('id'))} | {values} | {bare} |")
        body.append("")
    body += [
        "## Notes",
        "",
        "- fibo(38) in pure Python takes ~8 s, so the pure-Python rows of the fibo(38) "
        "workloads run fibo(27) x 100 (labelled as such); quick runs shrink the large "
        "workloads further and say so in each row.",
        "- The subprocess variant runs one OS process per activity: a 6-line C program "
        "(naive recursive fibo, prints the result) compiled once with `cc -O2`; without a C "
        "compiler it falls back to `python -c` (the row says which).",
        "- The parallel native target compares with the bare *sequential* compute divided by "
        "the cores; two vCPUs rarely give a 2x speed-up even to the bare thread pool, which is "
        "measured too (fibo table).",
        "- Throughput is measured in waves (start C, wait for all C, repeat), which includes "
        'each wave\'s tail; the "started together" rows start the whole batch at once.',
        "",
    ]
    return "\n".join(head + body)
