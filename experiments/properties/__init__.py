"""What correct means, written once: the properties every observer of Rumor judges.

Rumor promises eventual consistency with last-writer-wins (docs/ALGORITHM.md).
Each property family is one module, defined over one small data shape
(``observation``) that neither the lab nor the simulator owns: each of them
adapts what it saw to that shape and asks the same question.

- ``observation``: the shape: ``Write`` (what a client issued, acknowledged
  or not), ``Record`` (a version a node holds or was seen to hold),
  ``Applied`` (one node applying one version, in time), ``Observation``;
- ``purgeability``: what garbage collection may purge (tombstones and
  expired puts) and the highest such version known per key;
- ``lost_writes``: no acknowledged write is lost;
- ``resurrection``: no deleted or expired key comes back;
- ``lww``: every key ends at its highest acknowledged write, on every node;
- ``convergence``: every node ends with the same audit digest, within a bound;
- ``session_guarantees``: read-your-writes, monotonic reads and writes,
  writes-follow-reads, over one client's sequence of calls.

The lab (``rumor.experiments.lab.checkers``) and the simulator
(``rumor.experiments.sim.invariants``) turn the findings into their verdicts
and violations; what an observer cannot know (a write the client got no
answer for, a write whose loss the simulator reports rather than asserts) is
a write that is not acknowledged here. Nothing here imports either of them.
"""
