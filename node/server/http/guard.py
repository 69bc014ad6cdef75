"""The HTTP API refuses cross-site use: the Host allowlist and the Origin check.

A web page a user visits can make their browser send requests to a node it
can reach (a node on the user's laptop, one on the office network). Two
attacks follow, and this module refuses both before any route runs:

- Cross-site requests: a page on another origin posts to the node. Browsers
  send ``Origin`` with every such request that could change something, so a
  request whose ``Origin`` is not the node's own (``scheme://<its Host
  header>``) is refused with 403. JSON bodies are taken only as
  ``application/json`` (the gateway answers 415 otherwise), which a page
  cannot send cross-site without a CORS preflight the node never grants.
- DNS rebinding: a page on ``attacker.example`` makes that name resolve to the
  node's address and then talks to it as same-origin. The request still
  carries ``Host: attacker.example``, so the node answers only to the Host
  names it knows: ``localhost``, IP literals (a page served from an IP *is*
  that IP, so rebinding cannot use one), the listener's and advertised hosts,
  and ``--http-allowed-hosts`` (``*`` allows any).

A request carrying a valid API token is exempt from the Host allowlist: a
rebinding page cannot know the token, and clients reaching a node through a
load balancer or a Kubernetes Service name then need no configuration.

Workers binding requests (``Rumor-Namespace``, sent by workerd) arrive with a
Host header workerd makes up. They are exempt from the Host allowlist when
they carry a valid API token, or when the node has no token, its HTTP listener
is loopback and the request carries none of the headers every current browser
adds (``Origin``, ``Sec-Fetch-Site``, ``Sec-Fetch-Mode``); workerd sends none of
them. Any other binding request is checked like the rest.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from rumor.node.server.exposure import host_of, is_loopback

TokenStatus = Callable[[str | None], int | None]  # None: a valid token (auth.TokenChecker)

HTTP_FORBIDDEN = 403
BROWSER_HEADERS = ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")
HOST_DECISIONS_KEPT = 256  # distinct Host headers whose verdict is kept


def hostname_of(host_header: str) -> str:
    """The name in a Host header: ``[::1]:8781`` is ``::1``, ``Example.com:80`` ``example.com``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class HttpGuard:
    allowed_hosts: frozenset[str]
    allow_any_host: bool = False
    loopback_listener: bool = True
    token_status: TokenStatus | None = None  # None: the node has no API token
    # Host header -> allowed: clients send the same few on every request.
    _host_verdicts: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_listener(
        cls,
        http_listen: str,
        *,
        advertise: str = "",
        allowed_hosts: Iterable[str] = (),
        token_valid: TokenStatus | None = None,
    ) -> HttpGuard:
        names = {"localhost"}
        for address in (http_listen, advertise):
            if address:
                host = host_of(address).lower()
                if host not in _WILDCARD_HOSTS:
                    names.add(host)
        extra = {name.strip().lower().rstrip(".") for name in allowed_hosts if name.strip()}
        return cls(
            allowed_hosts=frozenset(names | (extra - {"*"})),
            allow_any_host="*" in extra,
            loopback_listener=is_loopback(http_listen),
            token_status=token_valid,
        )

    def token_valid(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries one of the node's API tokens."""
        if self.token_status is None:
            return False
        try:
            return self.token_status(authorization) is None
        except UnicodeError:
            return False

    def _host_allowed(self, host_header: str) -> bool:
        verdict = self._host_verdicts.get(host_header)
        if verdict is None:
            if len(self._host_verdicts) >= HOST_DECISIONS_KEPT:
                self._host_verdicts.clear()
            name = hostname_of(host_header)
            verdict = self.allow_any_host or (
                name in self.allowed_hosts or _is_ip_literal(name) or name.endswith(".localhost")
            )
            self._host_verdicts[host_header] = verdict
        return verdict

    def _binding_exempt(self, request: web.Request, token_valid: bool) -> bool:
        if token_valid:
            return True
        no_browser = not any(header in request.headers for header in BROWSER_HEADERS)
        return self.token_status is None and self.loopback_listener and no_browser

    def refusal(self, request: web.Request, *, binding: bool, token_valid: bool) -> str | None:
        """Why ``request`` is refused (403), or None to serve it.

        ``token_valid``: whether it carries a valid API token (``token_valid``),
        which the caller has already worked out for its own authorization.
        """
        headers = request.headers
        origin = headers.get("Origin")
        host_header = headers.get("Host", "")
        if origin is not None and not _same_origin(origin, host_header):
            return (
                f"Origin {origin!r} is not this node's own origin: cross-site requests are refused."
            )
        exempt = self._binding_exempt(request, token_valid) if binding else token_valid
        if not exempt and not self._host_allowed(host_header):
            return (
                f"Host {hostname_of(host_header)!r} is not one this node answers to (against"
                " DNS rebinding): add it with --http-allowed-hosts, or send an API token."
            )
        return None


def _same_origin(origin: str, host_header: str) -> bool:
    if origin == "null":  # sandboxed frames and local files: a browser, never the node itself
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default = "80" if parts.scheme == "http" else "443"
    return _with_port(parts.netloc, default) == _with_port(host_header, default)


def _with_port(netloc: str, default_port: str) -> str:
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc if "]:" in netloc else f"{netloc}:{default_port}"
    return netloc if netloc.count(":") == 1 else f"{netloc}:{default_port}"
