"""rumor.experiments: a laboratory for eventual consistency on real Rumor nodes.

history (what happened) → harness (makes it happen: nodes, workload, faults)
→ checkers (Jepsen-style verdicts) → report (summary.json, CSVs, report.md,
plots); simulator (the replica on virtual time, thousands of nodes).
"""
