"""The engine room: every replication decision, sans-I/O.

``engine`` holds the Engine and its contract (step, tick, propose, ready,
advance), ``messages`` what crosses between it and its driver, ``build`` wires
a replica, its membership and the engine for the node and the simulator alike.

Components, one concept each, hold the rest. Each implements ``Component``
(``components``: ``due_ms``, ``tick``, ``answer``; with the ``Services`` every
component is built from) and never calls a sibling: a decision that starts a
sibling's work goes through a hook the engine routes.

- ``Gossip`` (``gossip``, with ``push_queues``): push;
- ``AntiEntropy`` (``anti_entropy``): push-pull synchronisations, catch-ups;
- ``Probing`` (``probing``): SWIM, and the clock offsets the fence judges;
- ``Joining`` (``joining``): seeds, the join timeout, duplicate ids;
- ``AuditRounds`` (``audit_rounds``): the backstop;
- ``SnapshotJoin`` (``snapshot_join``): bootstrap by snapshot;
- ``SweepRounds`` (``sweep_rounds``): purges (timers only: it answers nothing).

Before any of them, ``Versions`` (``versions``) screens every message: a peer
whose protocol versions do not overlap this node's is refused, naming both,
and a feature is used with a peer only when both offer it.

Beside them: ``Envelopes`` (``envelopes``: what every message says about its
sender, the clamp of claims, and from it ``Staleness`` (``staleness``): how far
behind the alive members this node may be), ``Outbox`` (``outbox``: the
requests, replies, sync ticket and notices gathered for the next ``ready()``),
``Readiness`` (``readiness``: whether this node takes writes and serves reads —
the clock fence, a full disk — and the time records are judged by),
``OwnWrites`` (``own_writes``: own writes this node does not hold, after a
stale copy of its disk or a reserved block's tail, taken back before it writes
or covers them), ``GarbageCollection`` (``garbage_collection``: when the purge
rule is fed), ``Housekeeping`` (``housekeeping``: the O(members) round once per
interval, and what the purge rule is fed with), ``Membership`` (``membership``:
the member table), ``Canary`` (``canaries``: test-only switches) and
``ProtocolConfig`` (``protocol_config``: every knob).
"""
