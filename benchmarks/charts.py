"""PNG charts of a result (matplotlib, Agg). Without matplotlib, no charts and a message."""

from __future__ import annotations

import os
import sys
from typing import Any

from benchmarks.report import OBELISK, TASKER_STAGE_SECONDS

COLORS = {
    "dolmen": "#1f77b4",
    "inline": "#17becf",
    "bare": "#7f7f7f",
    "dbos": "#ff7f0e",
    "obelisk": "#2ca02c",
    "met": "#2ca02c",
    "missed": "#d62728",
}


def draw(result: dict[str, Any], folder: str, stem: str) -> dict[str, str]:
    """Write the charts; returns {name: file name relative to ``folder``}."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no charts (pip install -e '.[dev]')", file=sys.stderr)
        return {}
    made = {}
    for name, fn in (
        ("targets", _targets),
        ("fibo", _fibo),
        ("durable", _durable),
        ("dags", _dags),
        ("scaling", _scaling),
    ):
        fig = fn(plt, result)
        if fig is None:
            continue
        file = f"{stem}-{name}.png"
        fig.savefig(os.path.join(folder, file), dpi=110, bbox_inches="tight")
        plt.close(fig)
        made[name] = file
    return made


def _plain(*axes: Any, which: str = "both") -> None:
    """Tick labels as plain numbers (1, 2, 5, 100) instead of powers on log axes."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis) if which == "both" else (getattr(ax, which),):
            if axis.get_scale() == "log":
                low, high = sorted(axis.get_view_interval())
                subs = (1.0,) if low > 0 and high / low > 300 else (1.0, 2.0, 5.0)
                axis.set_major_locator(LogLocator(base=10, subs=subs))
                axis.set_major_formatter(fmt)
                axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _rows(result: dict[str, Any], family: str) -> list[dict[str, Any]]:
    return result["results"].get(family, [])


def _subtitle(result: dict[str, Any]) -> str:
    quick = ", quick sizes" if result["quick"] else ""
    return (
        f"{result['machine']['cores']} cores, synchronous={result['durability']['synchronous']}"
        f", {result['date'][:10]}{quick}"
    )


def _targets(plt: Any, result: dict[str, Any]) -> Any:
    rows = [t for t in result["targets"] if t["measured"] is not None and t["measured"] > 0]
    if not rows:
        return None
    # Distance to the target as a factor where <= 1 is met, whichever way the bound goes.
    factors = [t["ratio"] if t["op"] == "<=" else 1 / t["ratio"] for t in rows]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.5))
    y = range(len(rows))
    ax.barh(
        list(y),
        factors,
        color=[COLORS["met"] if t["met"] else COLORS["missed"] for t in rows],
    )
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(list(y), [t["measure"] for t in rows], fontsize=8)
    ax.invert_yaxis()
    for i, f in enumerate(factors):
        ax.text(f, i, f" {f:.2g}x", va="center", fontsize=7)
    ax.set_xlabel("measured relative to target (<= 1 is met; log scale)")
    _plain(ax)
    ax.set_title(f"DESIGN.md targets: green met, red missed\n{_subtitle(result)}", fontsize=10)
    return fig


def _fibo(plt: Any, result: dict[str, Any]) -> Any:
    rows = _rows(result, "fibo")
    if not rows:
        return None
    peers = [r for r in _rows(result, "peers") if r["id"].startswith("dbos.fibo")]
    keys = list(dict.fromkeys(r["key"] for r in rows))
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 1.0 + 1.25 * len(rows) / 1.6))
    axes = axes if len(keys) > 1 else [axes]
    for ax, key in zip(axes, keys, strict=True):
        bars: list[tuple[str, float, str]] = []
        for r in (r for r in rows if r["key"] == key):
            size = f"fibo({r['n']}) x {r['iterations']}"
            bars.append((f"dolmen {r['variant']}, {size}", r["seconds"], COLORS["dolmen"]))
            bars.append((f"bare {r['variant']}, {size}", r["bare_seconds"], COLORS["bare"]))
        for p in (p for p in peers if p["key"] == key):
            size = f"fibo({p['n']}) x {p['iterations']}"
            bars.append((f"DBOS {p['variant']}, {size}", p["seconds"], COLORS["dbos"]))
        first = next(r for r in rows if r["key"] == key)
        if f"{first['n']}x{first['iterations']}" == key.split(".")[0]:
            bars.append(("Obelisk best (published, t2.medium)", OBELISK[key], COLORS["obelisk"]))
        y = list(range(len(bars)))
        ax.barh(y, [b[1] for b in bars], color=[b[2] for b in bars])
        ax.set_yticks(y, [b[0] for b in bars], fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(min(b[1] for b in bars) / 2, max(b[1] for b in bars) * 4)
        for i, b in enumerate(bars):
            ax.text(b[1], i, f" {_sec(b[1])}", va="center", fontsize=7)
        n, k = key.split(".")[0].split("x")
        shape = "sequential" if key.endswith(".seq") else "parallel"
        ax.set_title(f"anchor: fibo({n}) x {k}, {shape}", fontsize=9)
        _plain(ax)
    axes[-1].set_xlabel("seconds (log scale); lower is better")
    fig.suptitle(f"Obelisk fibo workloads: dolmen, bare, DBOS\n{_subtitle(result)}", fontsize=10)
    fig.tight_layout()
    return fig


def _durable(plt: Any, result: dict[str, Any]) -> Any:
    rows = _rows(result, "durable")
    if not rows:
        return None
    peers = [r for r in _rows(result, "peers") if r["id"].startswith("dbos.durable")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (a1, a2), (a3, a4) = axes
    series = [("thread", COLORS["dolmen"]), ("inline", COLORS["inline"])]
    for executor, color in series:
        fit = next((r for r in rows if r["id"] == f"durable.fit.{executor}"), None)
        if fit:
            ns = fit["points"]["steps"]
            a1.plot(ns, fit["points"]["statements"], "o", color=color)
            a1.plot(
                ns,
                [fit["statements_a"] + fit["statements_b"] * n for n in ns],
                "-",
                color=color,
                label=f"dolmen {executor}: {fit['statements_a']:.2f} + {fit['statements_b']:.3f} N",
            )
        tp = [r for r in rows if r["id"].startswith(f"durable.tp.{executor}.n3.")]
        tp = sorted((r for r in tp if r["concurrency"] <= 128), key=lambda r: r["concurrency"])
        a3.plot(
            [r["concurrency"] for r in tp],
            [r["workflows_per_second"] for r in tp],
            "o-",
            color=color,
            label=f"dolmen {executor}",
        )
        cp = sorted(
            (
                r
                for r in rows
                if r["id"].startswith(f"durable.tp.{executor}.") and r["concurrency"] == 128
            ),
            key=lambda r: r["steps"],
        )
        a2.plot(
            [r["steps"] for r in cp],
            [r["commits_per_step"] for r in cp],
            "o-",
            color=color,
            label=f"dolmen {executor}, 128 concurrent",
        )
        lat = sorted(
            (r for r in rows if r["id"].startswith(f"durable.lat.{executor}.")),
            key=lambda r: r["steps"],
        )
        a4.plot(
            [r["steps"] for r in lat],
            [r["p50_seconds"] * 1e3 for r in lat],
            "o-",
            color=color,
            label=f"dolmen {executor} p50",
        )
        a4.plot(
            [r["steps"] for r in lat],
            [r["p99_seconds"] * 1e3 for r in lat],
            "x--",
            color=color,
            label=f"dolmen {executor} p99",
        )
    fit = next((r for r in peers if r["id"] == "dbos.durable.fit"), None)
    if fit:
        ns = fit["points"]["steps"]
        a1.plot(ns, fit["points"]["statements"], "o", color=COLORS["dbos"])
        a1.plot(
            ns,
            [fit["statements_a"] + fit["statements_b"] * n for n in ns],
            "-",
            color=COLORS["dbos"],
            label=f"DBOS: {fit['statements_a']:.2f} + {fit['statements_b']:.3f} N",
        )
        cp = sorted(
            (
                r
                for r in peers
                if r["id"].startswith("dbos.durable.tp")
                and r["concurrency"] == fit.get("concurrency")
            ),
            key=lambda r: r["steps"],
        )
        a2.plot(
            [r["steps"] for r in cp],
            [r["commits_per_step"] for r in cp],
            "o-",
            color=COLORS["dbos"],
            label=f"DBOS, {fit.get('concurrency')} concurrent",
        )
    dtp = sorted(
        (r for r in peers if r["id"].startswith("dbos.durable.tp.n3.")),
        key=lambda r: r["concurrency"],
    )
    if dtp:
        a3.plot(
            [r["concurrency"] for r in dtp],
            [r["workflows_per_second"] for r in dtp],
            "o-",
            color=COLORS["dbos"],
            label="DBOS",
        )
    dlat = sorted(
        (r for r in peers if r["id"].startswith("dbos.durable.lat")), key=lambda r: r["steps"]
    )
    if dlat:
        a4.plot(
            [r["steps"] for r in dlat],
            [r["p50_seconds"] * 1e3 for r in dlat],
            "o-",
            color=COLORS["dbos"],
            label="DBOS p50",
        )
    a1.set(title="SQL statements per workflow", xlabel="steps N", ylabel="statements")
    a2.axhline(0.05, color="black", linestyle=":", label="target 0.05")
    a2.set_yscale("log")
    a2.set(title="physical commits (fsyncs) per step under load", xlabel="steps N")
    a3.axhline(2000, color="black", linestyle=":", label="target 2,000/s")
    a3.set_xscale("log", base=2)
    a3.set_yscale("log")
    a3.set(
        title="throughput, 3-step workflows", xlabel="workflows started together", ylabel="per s"
    )
    a4.plot([10], [6], "k*", markersize=10, label="target: p50 <= 6 ms at N=10")
    a4.set_yscale("log")
    a4.set(title="latency, one workflow at a time", xlabel="steps N", ylabel="ms")
    a3.set_xticks([16, 64, 128], ["16", "64", "128"])
    _plain(a2, a4)
    _plain(a3, which="yaxis")
    for ax in (a1, a2, a3, a4):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if ax is a4 else 1, loc="upper left" if ax is a4 else "best")
    fig.suptitle(f"Durable-execution cost, N no-op steps\n{_subtitle(result)}", fontsize=10)
    fig.tight_layout()
    return fig


def _dags(plt: Any, result: dict[str, Any]) -> Any:
    rows = _rows(result, "dags")
    if not rows:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r["shape"] for r in rows]
    x = list(range(len(rows)))
    w = 0.38
    a1.bar([i - w / 2 for i in x], [r["p50_seconds"] * 1e3 for r in rows], w, label="p50")
    a1.bar([i + w / 2 for i in x], [r["p95_seconds"] * 1e3 for r in rows], w, label="p95")
    a1.set_xticks(x, names, rotation=20)
    a1.set(title="per workflow (end to end)", ylabel="ms")
    a2.bar([i - w / 2 for i in x], [r["stage_p50_seconds"] * 1e3 for r in rows], w, label="p50")
    a2.bar([i + w / 2 for i in x], [r["stage_p95_seconds"] * 1e3 for r in rows], w, label="p95")
    a2.axhline(TASKER_STAGE_SECONDS * 1e3, color="black", linestyle=":", label="Tasker ~64 ms")
    a2.set_xticks(x, names, rotation=20)
    a2.set(title="per sequential stage", ylabel="ms")
    for ax in (a1, a2):
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Tasker DAG shapes as dolmen workflows\n{_subtitle(result)}", fontsize=10)
    fig.tight_layout()
    return fig


def _scaling(plt: Any, result: dict[str, Any]) -> Any:
    rows = _rows(result, "scaling")
    if not rows:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for kind, label, color in (
        ("empty", "empty workflow", COLORS["dolmen"]),
        ("steps10", "10 no-op activities", COLORS["dbos"]),
    ):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["clients"])
        cs = [r["clients"] for r in mine]
        a1.plot(cs, [r["instances_per_second"] for r in mine], "o-", color=color, label=label)
        a2.plot(cs, [r["p50_seconds"] * 1e3 for r in mine], "o-", color=color, label=label)
    for ax in (a1, a2):
        ax.set_xscale("log", base=2)
        clients = sorted({r["clients"] for r in rows})
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.set_xlabel("concurrent clients")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    a1.set(title="instances per second", ylabel="per s")
    a2.set(title="start-to-end p50", ylabel="ms")
    fig.suptitle(f"Flowable-style scaling\n{_subtitle(result)}", fontsize=10)
    fig.tight_layout()
    return fig


def _sec(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} us"
