"""GatheredWrites: the writes of one turn of the event loop go in one proposal."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from rumor.node.core.errors import Unavailable
from rumor.node.replication.replica.replica import Write
from rumor.node.server.gathered_writes import GatheredWrites

NS = bytes(16)


class Proposals:
    """A stand-in for the engine's propose: records each proposal, answers each write."""

    def __init__(self) -> None:
        self.made: list[list[bytes]] = []
        self.refuse: Exception | None = None

    def __call__(self, writes: Sequence[Write]) -> list[Any]:
        if self.refuse is not None:
            raise self.refuse
        self.made.append([write.key for write in writes])
        return [(len(self.made), write.key) for write in writes]


def put(key: bytes) -> Write:
    return Write(NS, key, b"v")


def test_the_writes_of_one_turn_make_one_proposal_each_answered_in_order() -> None:
    proposals = Proposals()

    async def main() -> list[Any]:
        gathered = GatheredWrites(proposals)
        return await asyncio.gather(*(gathered.write(put(b"k%d" % i)) for i in range(5)))

    answers = asyncio.run(main())
    assert proposals.made == [[b"k0", b"k1", b"k2", b"k3", b"k4"]]
    assert answers == [(1, b"k%d" % i) for i in range(5)]


def test_a_key_written_twice_in_a_turn_is_proposed_twice_in_arrival_order() -> None:
    proposals = Proposals()

    async def main() -> None:
        gathered = GatheredWrites(proposals)
        await asyncio.gather(gathered.write(put(b"a")), gathered.write(put(b"a")))

    asyncio.run(main())
    assert proposals.made == [[b"a", b"a"]]


def test_writes_of_later_turns_make_proposals_of_their_own() -> None:
    proposals = Proposals()

    async def main() -> None:
        gathered = GatheredWrites(proposals)
        await gathered.write(put(b"alone"))
        await asyncio.gather(gathered.write(put(b"x")), gathered.write(put(b"y")))
        assert gathered.proposals == 2

    asyncio.run(main())
    assert proposals.made == [[b"alone"], [b"x", b"y"]]


def test_a_refused_proposal_fails_every_write_of_its_turn_and_the_next_turn_proposes() -> None:
    proposals = Proposals()

    async def main() -> None:
        gathered = GatheredWrites(proposals)
        proposals.refuse = Unavailable("the clock is fenced")
        results = await asyncio.gather(
            gathered.write(put(b"a")), gathered.write(put(b"b")), return_exceptions=True
        )
        assert [str(result) for result in results] == ["the clock is fenced"] * 2
        assert all(isinstance(result, Unavailable) for result in results)
        proposals.refuse = None
        answer: Any = await gathered.write(put(b"c"))
        assert answer == (1, b"c")

    asyncio.run(main())
    assert proposals.made == [[b"c"]]


def test_a_write_whose_caller_went_away_before_its_turn_ended_is_not_proposed() -> None:
    proposals = Proposals()

    async def main() -> None:
        gathered = GatheredWrites(proposals)
        gone = asyncio.create_task(gathered.write(put(b"gone")))
        kept = asyncio.create_task(gathered.write(put(b"kept")))
        await asyncio.sleep(0)  # both wait for their turn's proposal
        gone.cancel()
        answer: Any = await kept
        assert answer == (1, b"kept")
        with pytest.raises(asyncio.CancelledError):
            await gone

    asyncio.run(main())
    assert proposals.made == [[b"kept"]]


def test_a_turn_whose_every_caller_went_away_proposes_nothing() -> None:
    proposals = Proposals()

    async def main() -> None:
        gathered = GatheredWrites(proposals)
        gone = asyncio.create_task(gathered.write(put(b"gone")))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert gathered.proposals == 0
        answer: Any = await gathered.write(put(b"next"))
        assert answer == (1, b"next")

    asyncio.run(main())
    assert proposals.made == [[b"next"]]
