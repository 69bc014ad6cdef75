"""rumor.node.replication: the replica, the one object every write goes through."""

from rumor.node.replication.replica import Applied, Durability, ListPage, Replica

__all__ = ["Applied", "Durability", "ListPage", "Replica"]
