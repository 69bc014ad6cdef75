"""rumor.node.server: the node's I/O, one room per transport or concern.

Rooms: ``grpc/`` (the grpc.aio server and its services: KV, Admin, Faults,
Replication), ``http/`` (the Cloudflare-compatible REST API and the Workers
binding, on aiohttp), ``console/`` (the web console, built on the HTTP room),
``snapshot/`` (sending, fetching and swapping in a snapshot of the store),
``backup/`` (backups streamed off the host, scheduled backups, restore),
``workers/`` (worker processes that share the client listeners and batch their
operations to the owner process) and ``driver/`` (the engine's driver: the
EngineDriver, peer transport and codec, group commit, clock and injected
faults). Beside the rooms, the pieces every transport shares: ``operations``
(the KV operations behind every API), ``watch``, ``admission`` (the read and
call budgets), ``upload_budget`` (room and clocks for uploads), ``auth``
(tokens and their grants), ``access`` (what each call needs, the checks),
``audit`` (the audit trail), ``security``, ``admin_token`` (who may stop a node
without a cluster secret), ``exposure``, ``errors``,
``metrics``, ``metrics_merge``, ``log_throttle`` and ``loop_lag``.
"""
