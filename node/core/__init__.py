"""rumor.node.core: pure logic, no I/O. Time is always passed in."""
