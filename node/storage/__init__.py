"""rumor.node.storage: the Store protocol and its two implementations.

RocksStore keeps data in RocksDB through rocksdict (raw mode); MemoryStore keeps
it in dicts, for the simulator and for tests of the layers above. Both speak
only bytes: what the bytes mean is the replica's business (see layout.py).
"""

from rumor.node.storage.memory import MemoryStore
from rumor.node.storage.rocks import RocksStore, StoreLocked
from rumor.node.storage.store import COLUMN_FAMILIES, Batch, Store

__all__ = ["COLUMN_FAMILIES", "Batch", "MemoryStore", "RocksStore", "Store", "StoreLocked"]
