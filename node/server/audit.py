"""The audit trail: who changed namespaces, who called the Admin service, who was refused.

Each event is one structured record naming the caller by its token id
(``tok-`` and 12 hex digits of the token's SHA-256; ``cluster-secret`` for a
call made with the cluster secret; ``open`` when the API has no tokens),
never by the token itself. Events go to the node's log (``audit.*`` events)
and, with ``--audit-log FILE``, one JSON object a line to FILE, appended and
flushed as each happens (the file is opened again after it is moved away, so
log rotation needs no signal).

Events: ``namespace.create``, ``namespace.rename``, ``namespace.delete`` and
``admin.call`` (with the outcome: a gRPC status name or an HTTP status), and
``refused`` (the scope a call needed and the namespaces it named).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import structlog

log = structlog.get_logger("rumor.audit")

OPEN_CALLER = "open"


class AuditLog:
    """Writes audit events to the node's log and, when given a path, to that file."""

    def __init__(self, path: str = "") -> None:
        self._path = path
        self._lock = threading.Lock()
        self._file: Any = None
        self._inode: int | None = None
        if path:
            self._open()  # a path that cannot be written fails at start-up, not later

    def _open(self) -> None:
        self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        os.chmod(self._path, 0o600)
        self._inode = os.fstat(self._file.fileno()).st_ino

    def _reopen_if_moved(self) -> None:
        try:
            moved = os.stat(self._path).st_ino != self._inode
        except FileNotFoundError:
            moved = True
        if moved:
            self._file.close()
            self._open()

    def record(self, event: str, **fields: Any) -> None:
        log.info(f"audit.{event}", **fields)
        if not self._path:
            return
        entry = {"time": round(time.time(), 3), "event": event, **fields}
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            try:
                self._reopen_if_moved()
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:
                log.error("audit.write_failed", path=self._path, error=str(exc))

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
