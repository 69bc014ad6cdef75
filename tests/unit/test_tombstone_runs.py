"""Remembered tombstone runs (rumor.node.replication.replica.tombstone_runs): a listing
over many tombstones costs the live keys it returns plus one seek per run, and no run
ever hides a live key.

The cost is counted, not timed: ``ListPage.stepped`` is the headers a slice read plus
the runs it sought past.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rumor.node.replication.replica.replica import ListPage, Replica, Write
from rumor.node.replication.replica.tombstone_runs import (
    MAX_RUNS,
    TombstoneRuns,
    successor,
)
from rumor.node.storage import MemoryStore, RocksStore, Store

NODE_ID = 0x1234_5678_9ABC_DEF0
WALL_MS = 1_700_000_000_000
NOW_S = WALL_MS / 1000
NS = bytes.fromhex("0123456789abcdef0123456789abcdef")
SLICE = 2000  # the node's list slice (operations.LIST_SCAN_SLICE)


def _replica(store: Store | None = None) -> Replica:
    return Replica(MemoryStore() if store is None else store, new_node_id=NODE_ID, wall_ms=WALL_MS)


def _list(replica: Replica, limit: int, prefix: bytes = b"") -> tuple[list[bytes], int]:
    """One filled page as the node reads it (slices of ``SLICE``): its keys, its cost."""
    keys: list[bytes] = []
    stepped = 0
    resume: bytes | None = None
    while True:
        page: ListPage = replica.list_page(
            NS, prefix, None, limit - len(keys), NOW_S, scan_budget=SLICE, resume_from=resume
        )
        keys += [key for key, _ in page.keys]
        stepped += page.stepped
        if page.resume_from is None:
            return keys, stepped
        resume = page.resume_from


def _deleted(replica: Replica, keys: list[bytes]) -> None:
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        replica.write_many([Write(NS, key, b"v") for key in chunk], WALL_MS)
        replica.write_many([Write(NS, key, tombstone=True) for key in chunk], WALL_MS)


# ---- the interval set, alone ---------------------------------------------------------


def test_learn_merges_what_overlaps_or_touches_and_written_splits() -> None:
    runs = TombstoneRuns()
    runs.learn(b"b", b"d")
    runs.learn(b"d", b"f")  # touches: one run
    runs.learn(b"x", b"z")
    assert runs.runs() == [(b"b", b"f"), (b"x", b"z")]
    runs.learn(b"c", b"y")  # overlaps both
    assert runs.runs() == [(b"b", b"z")]
    runs.written([b"m"])
    assert runs.runs() == [(b"b", b"m"), (successor(b"m"), b"z")]
    assert runs.covering(b"m") is None and runs.covering(b"l") == b"m"
    runs.written([b"b", b"a", b"zz"])  # the start of a run; keys outside every run
    assert runs.runs() == [(successor(b"b"), b"m"), (successor(b"m"), b"z")]
    assert runs.next_start(b"a") == successor(b"b")
    runs.learn(b"q", b"q")  # empty: nothing
    assert len(runs) == 2


def test_at_most_max_runs_are_kept() -> None:
    runs = TombstoneRuns()
    for index in range(MAX_RUNS + 10):
        runs.learn(b"%08d" % (2 * index), b"%08d\x01" % (2 * index))
    assert len(runs) == MAX_RUNS
    runs.learn(b"00000000", b"00000003")  # a merge still happens when full
    assert len(runs) == MAX_RUNS - 1


UNIVERSE = sorted(
    {bytes([a]) for a in range(8)} | {bytes([a, b]) for a in range(8) for b in range(4)}
)
universe_key = st.sampled_from(UNIVERSE)


@given(st.lists(st.tuples(st.booleans(), universe_key, universe_key), max_size=60))
def test_runs_cover_exactly_what_was_learned_and_not_written_since(
    steps: list[tuple[bool, bytes, bytes]],
) -> None:
    """A model: the keys (of a small universe) that learned claims cover, less the keys
    written since (a key at a time, or a bulk write cutting several runs). The runs
    claim exactly those, stay sorted, disjoint, not touching."""
    runs = TombstoneRuns()
    covered: set[bytes] = set()
    for is_write, a, b in steps:
        if is_write:  # two keys: with fewer runs than keys, the bulk path
            runs.written([a, b])
            covered -= {a, b}
        else:
            low, high = min(a, b), max(a, b)
            runs.learn(low, high)
            covered |= {key for key in UNIVERSE if low <= key < high}
    assert {key for key in UNIVERSE if runs.covering(key) is not None} == covered
    held = runs.runs()
    assert all(low < high for low, high in held)
    for (_, high), (low, _) in pairwise(held):
        assert high < low


# ---- listings over a replica ---------------------------------------------------------


def test_a_list_over_tombstones_costs_them_once(tmp_path: Path) -> None:
    """20,000 deleted keys before one live key, in RocksDB: the first List(limit=1)
    steps over them all, every later one over a handful, whatever is written beside."""
    store = RocksStore(tmp_path / "db")
    try:
        replica = _replica(store)
        dead = [b"dead%06d" % i for i in range(20_000)]
        _deleted(replica, dead)
        replica.write(Write(NS, b"zlive", b"v"), WALL_MS)
        keys, first = _list(replica, 1)
        assert keys == [b"zlive"] and first >= 20_000
        keys, again = _list(replica, 1)
        assert keys == [b"zlive"]
        # The runs learned slice by slice touch, so they are one: a seek and the live key.
        assert again <= 3, again
        # A put inside the run: listed at once, and the run splits around it.
        replica.write(Write(NS, b"dead010000x", b"v"), WALL_MS)
        keys, cost = _list(replica, 2)
        assert keys == [b"dead010000x", b"zlive"]
        assert cost <= 5, cost
        # Deleting it again, and tombstones added, keep the listing exact and cheap.
        replica.write(Write(NS, b"dead010000x", tombstone=True), WALL_MS)
        _deleted(replica, [b"dead010000y"])
        keys, cost = _list(replica, 1)
        assert keys == [b"zlive"] and cost <= 8, cost
        keys, cost = _list(replica, 1, prefix=b"dead")  # a prefix inside the runs
        assert keys == [] and cost <= 8, cost
    finally:
        store.close()


def test_a_sweep_pass_teaches_the_runs_to_the_first_listing(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "db")
    try:
        replica = _replica(store)
        _deleted(replica, [b"gone%06d" % i for i in range(10_000)])
        replica.write(Write(NS, b"zz", b"v"), WALL_MS)
        start: bytes | None = b""
        while start is not None:  # a pass, in budgets; nothing is stable, nothing purged
            start = replica.sweep(start, NOW_S, 1000)
        keys, cost = _list(replica, 1)
        assert keys == [b"zz"] and cost <= 3, cost
    finally:
        store.close()


operation = st.tuples(
    st.sampled_from(["put", "delete", "list", "sweep"]),
    st.integers(min_value=0, max_value=199),
    st.integers(min_value=1, max_value=40),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(operation, min_size=1, max_size=40))
def test_listings_with_runs_match_the_live_keys(ops: list[tuple[str, int, int]]) -> None:
    """Whatever the interleaving of bulk puts, deletes, listings and sweeps, a listing
    (in small slices, so runs are learned at slice ends too) returns exactly the live
    keys: no remembered run hides one."""
    replica = _replica()
    live: set[bytes] = set()
    for kind, first, count in ops:
        keys = [b"k%03d" % i for i in range(first, min(first + count * 5, 200))]
        if kind == "put":
            replica.write_many([Write(NS, key, b"v") for key in keys[::3]], WALL_MS)
            live |= set(keys[::3])
        elif kind == "delete":
            replica.write_many([Write(NS, key, tombstone=True) for key in keys], WALL_MS)
            live -= set(keys)
        elif kind == "sweep":
            start: bytes | None = b""
            while start is not None:
                start = replica.sweep(start, NOW_S, 7)
        listed: list[bytes] = []
        resume: bytes | None = None
        while True:
            page = replica.list_page(
                NS, b"", None, 1000, NOW_S, scan_budget=count, resume_from=resume
            )
            listed += [key for key, _ in page.keys]
            if page.resume_from is None:
                break
            resume = page.resume_from
        assert listed == sorted(live)
        paged: list[bytes] = []  # pages of ``count`` through cursors (start_after)
        while True:
            after = paged[-1] if paged else None
            page = replica.list_page(NS, b"", after, count, NOW_S, scan_budget=SLICE)
            paged += [key for key, _ in page.keys]
            if page.complete:
                break
        assert paged == sorted(live)
        prefixed = _list(replica, count, prefix=b"k1")[0]
        assert prefixed == sorted(key for key in live if key.startswith(b"k1"))[:count]
