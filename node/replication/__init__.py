"""rumor.node.replication: the replica and the protocol engine, in two rooms.

``replica/`` turns a client write or a received record into store writes and
answers reads (the one object every write goes through); ``engine/`` is the
sans-I/O protocol engine (step / tick / propose / ready / advance) that decides
what to send and when. The engine drives the replica; the replica never
imports the engine.
"""

from rumor.node.replication.replica.replica import Applied, Durability, ListPage, Replica

__all__ = ["Applied", "Durability", "ListPage", "Replica"]
