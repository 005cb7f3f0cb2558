"""Reproducible dolmen workloads; run with `python -m benchmarks run [--quick] [--only NAME]`.

One module per workload family, each with ``steps(ctx) -> [(label, measure)]``:
``fibo`` (Obelisk's fibo tables), ``native`` (native pool efficiency), ``durable`` (the cost
of durable execution), ``dags`` (Tasker's DAG shapes), ``scaling`` (Flowable-style
clients), ``recovery`` (resume after the host dies), ``peers`` (DBOS, run by
``dbos_peer`` in its own process). ``workflows`` holds the shared step bodies, ``common``
the timing helpers, ``targets`` the targets of DESIGN.md, ``report`` and ``charts`` the
Markdown and PNG output.
"""
