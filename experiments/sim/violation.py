"""One broken invariant of a simulated run: which one, and what was seen.

Every check of a run reports in this shape — convergence (``invariants``),
what became of the writes (``write_checks``), the membership
(``membership_checks``) and the session guarantees
(``session_clients.session_violations``); ``Outcome.violations`` collects
them, and a run with any fails. ``invariant`` is the name the properties and
the docs use (``lost-writes``, ``one process per id``...), so a failure reads
the same wherever it is reported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    detail: str
