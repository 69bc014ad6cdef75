"""rumor.client: the client side of Rumor (the `rumor` command's launcher)."""
