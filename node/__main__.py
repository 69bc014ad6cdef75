"""`python -m rumor.node` is `rumor node`."""

from rumor.node.cli import node_command

node_command(prog_name="rumor node")
