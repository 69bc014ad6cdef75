"""An idle node sleeps: a lone node (no seed, no peer) wakes only for its timers once
writes stop.

A bug test, not a benchmark: a node that stays due for a timer it never moves waits
1 ms at a time, ~800 times a second; a sleeping one wakes for its timers, ~150 times
a second under the local profile (the loop-lag sampler every 10 ms, the replication
loop every 20 ms). What is counted is how often the node's event-loop thread went to
sleep (its voluntary context switches), not its CPU time: on a shared virtual machine
the CPU an idle process is charged follows the host (a lone node measured 1.5% of a
core one day and 6% the next with the same code), while the count of its sleeps does
not. The local profile makes the regular seed contact come due within the window, as
it did when a lone node spun.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rumor.v1 import kv_pb2 as pb
from tests.support.nodes import NodeProcess, create_namespace

WINDOWS = 3
WINDOW_S = 3.0
# Between the ~150 sleeps a second of an idle node and the ~800 of the 1 ms spin
# (measured by putting the spin back). The quietest window is judged: a burst of
# background work (a flush, a compaction) can add wake-ups to one window.
MAX_SLEEPS_PER_S = 400


def loop_sleeps(pid: int) -> int:
    """How many times the process's main thread (the event loop's) has gone to sleep."""
    status = Path(f"/proc/{pid}/task/{pid}/status").read_text()
    return next(
        int(line.split()[1])
        for line in status.splitlines()
        if line.startswith("voluntary_ctxt_switches:")
    )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc (reported, not judged)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_idle_lone_node_sleeps_until_its_timers(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data", "--protocol-profile", "local").start()
    try:
        assert node.process is not None
        pid = node.process.pid
        ns = create_namespace(node, "idle")
        for i in range(300):  # overwrites: the sweeper has replaced entries to drop
            node.kv.Put(pb.PutRequest(namespace_id=ns, key=b"k%d" % (i % 5), value=b"v"))
        rates, cpu = [], []
        for _ in range(WINDOWS):
            sleeps, used = loop_sleeps(pid), cpu_seconds(pid)
            time.sleep(WINDOW_S)  # the measurement window, not a wait for anything
            rates.append((loop_sleeps(pid) - sleeps) / WINDOW_S)
            cpu.append(round(cpu_seconds(pid) - used, 2))
        assert node.alive()
        assert min(rates) < MAX_SLEEPS_PER_S, (
            f"an idle lone node's event loop went to sleep {rates} times a second"
            f" (CPU {cpu} s per {WINDOW_S} s)"
        )
        assert min(rates) > 0  # the count is read from the right thread
        got = node.kv.Get(pb.GetRequest(namespace_id=ns, key=b"k4"))
        assert got.found and got.value == b"v"
    finally:
        node.stop()
