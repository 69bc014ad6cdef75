"""Every start order of 3 to 5 nodes with one seed list forms one cluster within the bound.

The real engine on virtual time (``rumor.experiments.sim.start_order``): each node
is given every node's address as its seeds and the nodes start one after another
in every possible order. A node that asked a seed before it was up must ask it
again even once another node joined it, or the rest stays apart until the next
periodic seed contact (several times the bound).
"""

from __future__ import annotations

import pytest

from rumor.experiments.sim.execution import quick_protocol
from rumor.experiments.sim.start_order import bound_ms, start_orders


@pytest.mark.parametrize("nodes", [3, 4, 5])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_start_order_forms_one_cluster_within_one_probe_round(nodes: int, seed: int) -> None:
    bound = bound_ms(quick_protocol())
    late = [
        (result.order, result.after_last_start_ms)
        for result in start_orders(nodes, seed=seed)
        if result.after_last_start_ms is None or result.after_last_start_ms > bound
    ]
    assert not late, f"{len(late)} orders over {bound} ms after the last start: {late[:5]}"


def test_the_bound_is_well_below_the_periodic_seed_contact() -> None:
    # Else the property would hold by the periodic contact alone.
    protocol = quick_protocol()
    assert 2 * bound_ms(protocol) < protocol.seed_contact_interval_ms
