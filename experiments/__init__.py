"""rumor.experiments: a laboratory for eventual consistency, in two rooms.

``lab/`` runs real nodes: history (what happened) → harness (makes it happen:
nodes, workload, faults) → checkers (Jepsen-style verdicts) → report
(summary.json, CSVs, report.md, plots). ``sim/`` runs the same engine on
virtual time: the deterministic simulator, its fuzz and shrink, and the scale
run (thousands of nodes). ``cli`` holds ``rumor experiment`` and ``rumor simulate``.
"""
