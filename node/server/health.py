"""What ``/healthz`` and the gRPC health service say: ready, writable, and why not.

A node is *ready* once it joined (or serves alone) and while its clock is not
fenced: load balancers and clients send it nothing otherwise. A ready node
may still refuse writes — its disk is full — while it serves reads; ``/healthz``
answers 503 for it too, saying so, since a check that cannot tell reads from
writes must not send it writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Health:
    ready: bool
    not_ready: str = ""  # why not ready
    writes_refused: str = ""  # why writes are refused ("" while taken)

    def http(self) -> tuple[int, dict[str, Any]]:
        """``/healthz``'s status and JSON body."""
        if not self.ready:
            return 503, {"status": "unavailable", "reason": self.not_ready}
        if self.writes_refused:
            return 503, {
                "status": "read_only",
                "reads": "ok",
                "writes": "refused",
                "reason": self.writes_refused,
            }
        return 200, {"status": "ok"}
