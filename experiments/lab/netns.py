"""Real network partitions: one Linux network namespace per node, joined by a bridge.

``NamespaceNetwork(n)`` creates a bridge ``rumor-XXXX`` in the root namespace
(address ``10.231.R.1/24``, R random), and for every node a namespace
``rumor-XXXX-i`` holding one end of a veth pair (``10.231.R.<i+2>/24``, lo up)
whose other end is a port of the bridge. The namespaces have no default
route: a node can reach only its peers and the harness on the bridge.

``isolate(i)`` cuts node i off from every other node with blackhole routes
(in its own namespace to every peer, and in every peer's namespace to it), so
packets between them are dropped by the kernel in both directions while the
harness can still reach every node, as with the Faults-service partitions;
``restore(i)`` removes those routes. Everything created is deleted on exit,
even after a failure; ``cleanup_leftovers()`` removes what a killed run left.
Needs root and ``ip`` (iproute2); ``available()`` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from types import TracebackType

PREFIX = "rumor-"
PORT = 7401
_OURS = re.compile(rf"^{PREFIX}[0-9a-f]{{4}}(-\d+|h\d+)?$")


class NetnsError(RuntimeError):
    """An ``ip`` command failed; the message holds the command and its stderr."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["ip", *args]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=10)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def available() -> str | None:
    """None when namespaces can be used here, else the reason they cannot."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not running as root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"{PREFIX}{secrets.token_hex(2)}-probe"
    try:
        result = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"ip netns add failed: {exc}"
    if result.returncode != 0:
        return f"ip netns add failed: {result.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


def namespaces() -> list[str]:
    """Network namespaces whose name starts with the prefix."""
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def links() -> list[str]:
    """Root-namespace links (bridges, veth ends) whose name starts with the prefix."""
    out = _ip("-o", "link", "show", check=False).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [name for name in names if name.startswith(PREFIX)]


def cleanup_leftovers() -> list[str]:
    """Delete namespaces and links this module made that no process uses any more."""
    removed = []
    for name in namespaces():
        unused = _OURS.match(name) and not _ip("netns", "pids", name, check=False).stdout.strip()
        if unused and _ip("netns", "delete", name, check=False).returncode == 0:
            removed.append(name)
    live = {name.rsplit("-", 1)[0] for name in namespaces()}
    for name in links():
        orphan = _OURS.match(name) and name[: len(PREFIX) + 4] not in live
        if orphan and _ip("link", "delete", name, check=False).returncode == 0:
            removed.append(name)
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    routes = _ip("-4", "route", "show", "table", "all", check=False).stdout
    addrs = _ip("-4", "-o", "addr", "show", check=False).stdout
    for _ in range(64):
        subnet = ipaddress.IPv4Network(f"10.231.{secrets.randbelow(256)}.0/24")
        prefix = f"10.231.{subnet.network_address.packed[2]}."
        if prefix not in routes and prefix not in addrs:
            return subnet
    raise NetnsError("no free 10.231.x.0/24 subnet")


class NamespaceNetwork:
    """A bridge and ``nodes`` namespaces; use as a context manager."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.tag = f"{PREFIX}{secrets.token_hex(2)}"
        self._forwarding = False  # an iptables rule lets the bridge forward
        self.bridge = self.tag
        self.subnet = _free_subnet()
        hosts = list(self.subnet.hosts())
        self.gateway = str(hosts[0])
        self._addresses = [str(hosts[i + 1]) for i in range(nodes)]
        self.isolated: set[int] = set()
        self._created: list[str] = []  # namespaces, deleted in reverse order

    def namespace(self, index: int) -> str:
        return f"{self.tag}-{index}"

    def address(self, index: int) -> str:
        return self._addresses[index]

    def listen(self, index: int) -> str:
        return f"{self._addresses[index]}:{PORT}"

    def prefix(self, index: int) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(index)]

    def _exec(self, index: int, *args: str, check: bool = True) -> None:
        _ip("-n", self.namespace(index), *args, check=check)

    def __enter__(self) -> NamespaceNetwork:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        bits = self.subnet.prefixlen
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{bits}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        self._accept_forwarding()
        for index in range(self.nodes):
            ns = self.namespace(index)
            host, inner = f"{self.tag}h{index}", f"{self.tag}n{index}"
            _ip("netns", "add", ns)
            self._created.append(ns)
            _ip("link", "add", host, "type", "veth", "peer", "name", inner, "netns", ns)
            _ip("link", "set", host, "master", self.bridge, "up")
            self._exec(index, "link", "set", "lo", "up")
            self._exec(index, "link", "set", inner, "name", "eth0")
            self._exec(index, "addr", "add", f"{self.address(index)}/{bits}", "dev", "eth0")
            self._exec(index, "link", "set", "eth0", "up")

    def _forward_rule(self) -> list[str]:
        return ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]

    def _accept_forwarding(self) -> None:
        """Let packets cross the bridge whatever the host's firewall says: with bridge
        netfilter on, a FORWARD policy of DROP (Docker sets one) would cut every node off."""
        if shutil.which("iptables") is None:
            return
        rule = subprocess.run(
            ["iptables", "-I", *self._forward_rule()], capture_output=True, text=True, check=False
        )
        self._forwarding = rule.returncode == 0

    def _drop_forwarding_rule(self) -> None:
        if self._forwarding:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(["iptables", "-D", *self._forward_rule()], check=False)
            self._forwarding = False

    def _peers(self, index: int) -> Sequence[int]:
        return [i for i in range(self.nodes) if i != index]

    def isolate(self, index: int) -> None:
        """Drop every packet between node ``index`` and the other nodes, both ways."""
        for peer in self._peers(index):
            self._exec(index, "route", "replace", "blackhole", f"{self.address(peer)}/32")
            self._exec(peer, "route", "replace", "blackhole", f"{self.address(index)}/32")
        self.isolated.add(index)

    def restore(self, index: int) -> None:
        """Undo ``isolate(index)``, keeping the cuts of other isolated nodes."""
        self.isolated.discard(index)
        for peer in self._peers(index):
            if peer in self.isolated:
                continue
            self._exec(index, "route", "del", "blackhole", f"{self.address(peer)}/32", check=False)
            self._exec(peer, "route", "del", "blackhole", f"{self.address(index)}/32", check=False)

    def restore_all(self) -> None:
        for index in sorted(self.isolated):
            self.restore(index)

    def close(self) -> None:
        """Delete the namespaces (their veth pairs go with them), the bridge and its
        firewall rule."""
        self._drop_forwarding_rule()
        for ns in reversed(self._created):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _ip("netns", "delete", ns, check=False)
        self._created.clear()
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            for name in links():
                if name.startswith(self.tag):
                    _ip("link", "delete", name, check=False)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
