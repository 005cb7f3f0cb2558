"""The actors: the processes that run executions, on one machine or a Ray cluster.

The host (its face in ``host``, driving executions in ``dispatch``, durable writes in
``write_path``), the executors and worker processes, recovery plans, the cluster
coordinator with its lease table, the replayers with their remote store, the typed
requests, a driver's ``connection`` and the Ray face (``ray_face``: ``HostActor``,
``ensure_ray``). Ray is imported here and nowhere below.
"""
