"""Canaries: test-only switches that bring fixed bugs back, so a fuzz proves it finds them.

A node never runs with one; the simulator's fuzz does (``rumor simulate --fuzz
--canary NAME``, the name being the value), and must then report a broken
invariant. Each member says which fix it undoes and where.
"""

from __future__ import annotations

import enum


class Canary(enum.Enum):
    # joining: a node that found no seed stops retrying after its first warning.
    NO_SEED_RETRY = "no_seed_retry"
    # envelopes: watermark claims and vectors are taken as sent, never clamped.
    FORGED_WATERMARK = "forged_watermark"
    # joining: no duplicate-id check; a copy of a node's disk runs beside it.
    DUPLICATE_ID = "duplicate_id"
    # engine: GC purges while a seed was never joined through (a group formed apart).
    GC_ALONE = "gc_alone"
    # snapshot_join: the copy is served to a joiner the GC does not wait for.
    SNAPSHOT_UNADMITTED = "snapshot_unadmitted"
    # backup_restore: a restored backup started with seeds is not refused; it joins the
    # cluster it was taken of (the simulator's ``stale_backup`` fault).
    RESTORED_REJOINS = "restored_rejoins"
    # probing: any answer to a probe is the probed member's sign of life, whoever sent it.
    ANY_ANSWER_ALIVE = "any_answer_alive"
