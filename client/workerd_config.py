"""The workerd config (Cap'n Proto text) that backs a Worker's KV bindings with Rumor.

Pure text generation, no I/O. Each binding becomes a workerd ``external``
service pointing at a node's HTTP listener, with two injected headers: the
namespace (``Rumor-Namespace``, which makes the node answer in the Workers
binding protocol) and, when the cluster needs one, the API token. A node
whose HTTP listener speaks HTTPS is reached over HTTPS, trusting the CA given
(or the system's). The Worker is one ES module, embedded by a path relative
to the config file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NAMESPACE_HEADER = "Rumor-Namespace"  # the node's rumor.node.server.http.workers_binding
DEFAULT_COMPATIBILITY_DATE = "2025-09-01"


@dataclass(frozen=True, slots=True)
class KVBinding:
    """``env.<name>`` in the Worker: the Rumor namespace with id ``namespace_id``."""

    name: str
    namespace_id: str


@dataclass(frozen=True, slots=True)
class Https:
    """The node's HTTP listener speaks HTTPS: the CA that signed its certificate (PEM;
    empty: the system's browser CAs) and the name its certificate is for."""

    certificate_host: str
    ca_pem: str = ""


def capnp_text(value: str) -> str:
    """A Cap'n Proto text literal: quotes, backslashes and control characters escaped."""
    escaped = []
    for char in value:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\x{ord(char):02x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _service_name(binding: KVBinding) -> str:
    return f"rumor-kv-{binding.name}"


def _headers(binding: KVBinding, api_token: str | None) -> str:
    headers = [(NAMESPACE_HEADER, binding.namespace_id)]
    if api_token:
        headers.append(("Authorization", f"Bearer {api_token}"))
    return ", ".join(
        f"(name = {capnp_text(name)}, value = {capnp_text(value)})" for name, value in headers
    )


def _protocol(binding: KVBinding, api_token: str | None, https: Https | None) -> str:
    """How workerd speaks to the node: HTTP, or HTTPS trusting the node's CA."""
    options = f"(injectRequestHeaders = [{_headers(binding, api_token)}])"
    if https is None:
        return f"http = {options}"
    trust = (
        f"trustedCertificates = [{capnp_text(https.ca_pem)}]"
        if https.ca_pem
        else "trustBrowserCas = true"
    )
    return (
        f"https = (options = {options}, tlsOptions = ({trust}),"
        f" certificateHost = {capnp_text(https.certificate_host)})"
    )


def render(
    *,
    script: str,
    bindings: Sequence[KVBinding],
    node_http: str,
    listen: str,
    api_token: str | None = None,
    compatibility_date: str = DEFAULT_COMPATIBILITY_DATE,
    module_name: str = "worker.js",
    https: Https | None = None,
) -> str:
    """The config: ``script`` (relative to the config file) served on ``listen``; the KV
    bindings reach ``node_http`` over HTTP, or HTTPS with ``https``."""
    services = ['    (name = "main", worker = .worker),']
    for binding in bindings:
        services.append(
            f"    (name = {capnp_text(_service_name(binding))}, external = ("
            f"address = {capnp_text(node_http)}, {_protocol(binding, api_token, https)})),"
        )
    kv = ",\n".join(
        f"    (name = {capnp_text(b.name)}, kvNamespace = {capnp_text(_service_name(b))})"
        for b in bindings
    )
    return (
        "# Written by `rumor worker`: a Worker whose KV bindings are Rumor namespaces.\n"
        'using Workerd = import "/workerd/workerd.capnp";\n\n'
        "const config :Workerd.Config = (\n"
        "  services = [\n" + "\n".join(services) + "\n  ],\n"
        f'  sockets = [(name = "http", address = {capnp_text(listen)}, http = (),'
        ' service = "main")],\n'
        ");\n\n"
        "const worker :Workerd.Worker = (\n"
        f"  modules = [(name = {capnp_text(module_name)},"
        f" esModule = embed {capnp_text(script)})],\n"
        f"  compatibilityDate = {capnp_text(compatibility_date)},\n"
        "  bindings = [\n" + kv + "\n  ],\n"
        ");\n"
    )
