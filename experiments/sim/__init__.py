"""Deterministic simulation of whole nodes: the real ``Engine`` on virtual time.

One concept per module: ``loop`` (virtual time), ``latency`` (delay draws),
``disk`` (a store that knows what is synced), ``network`` (calls, replies,
timeouts and link faults), ``process`` (the driver of one engine, as the
server drives it), ``trace`` (the inputs and outputs of engines, for replay),
``cluster`` (processes on addresses: start, crash, power loss, restore),
``ledger`` (what clients were told), ``schedule`` (a run as data; faults named
by the shared ``FaultKind``, each kind's shape drawn from a table),
``random_schedule`` (a whole schedule drawn from a seed),
``execution`` (running a schedule; a planner per fault kind), ``invariants``
(what must hold at the end, and convergence), ``write_checks`` (what became
of the writes: the cluster adapted to ``rumor.experiments.properties``),
``membership_checks`` (the simulator's own: removed nodes stop, gone members
retire, one process per id), ``bounds`` (how long settling may take),
``violation`` (what a check reports), ``shrink`` (delta debugging), ``fuzz``
(many schedules), ``start_order`` (every order a cluster can start in, with
one seed list) and ``scale`` (latency at thousands of nodes).
Nothing here makes a protocol decision: the engine does.
"""
