"""`dolmen upgrade-check`: before a deploy, replay the unfinished executions on the new code.

Reads the database read-only and imports the modules named (the code as it is on disk
now); nothing runs and no Ray starts. Exit 1 if any execution would block.
"""

from __future__ import annotations

import argparse
import json

from dolmen.cli.plumbing import EXIT_FAILED, EXIT_OK, db_path
from dolmen.cli.render.text import table
from dolmen.runtime.events import short
from dolmen.storage.upgrade_check import UpgradeReport, check_upgrade, workflows_of


def cmd_upgrade_check(args: argparse.Namespace) -> int:
    workflows = workflows_of(args.module)
    if args.workflow:
        workflows = [w for w in workflows if w.name in args.workflow]
    report = check_upgrade(db_path(args), workflows)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for line in render(report):
            print(line)
    return EXIT_OK if report.ok else EXIT_FAILED


def render(report: UpgradeReport) -> list[str]:
    rows = [["WORKFLOW", "UNFINISHED", "REPLAY CLEANLY", "WOULD BLOCK"]]
    rows += [
        [w.workflow, str(w.checked), str(w.clean), str(len(w.divergences))]
        for w in report.workflows
    ]
    lines = table(rows, right=range(1, 4))
    for d in report.divergences:
        lines.append(
            f"  {d.execution_id} at history position {d.position}: recorded "
            f"{short(d.recorded)}, the new code issues {short(d.issued)}"
        )
    blocked = len(report.divergences)
    verdict = "ok to deploy" if report.ok else f"{blocked} would block"
    lines.append(
        f"dolmen: {report.checked} unfinished executions checked in {report.seconds:.2f} s: "
        f"{verdict}"
    )
    return lines
