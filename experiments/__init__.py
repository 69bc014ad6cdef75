"""rumor.experiments: a laboratory for eventual consistency, in two rooms and two shared modules.

``properties/`` is what correct means, written once: lost writes,
resurrection, last-writer-wins, purgeability and convergence, one module
per family, over an observer-neutral shape; both rooms adapt what they saw
to it. ``faults`` is the one vocabulary of faults (``FaultKind``) both rooms
inject. ``lab/`` runs real nodes: history (what happened) → harness (makes
it happen: nodes, workload, faults) → checkers (Jepsen-style verdicts, by
the properties) → report (summary.json, CSVs, report.md, plots). ``sim/``
runs the same engine on virtual time: the deterministic simulator, its
invariants (the properties, and its own), its fuzz and shrink, and the scale
run (thousands of nodes). ``cli`` holds ``rumor experiment`` and ``rumor
simulate``.
"""
