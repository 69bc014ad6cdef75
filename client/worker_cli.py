"""`rumor worker`: run a Worker in workerd with its KV bindings backed by a Rumor cluster.

    rumor worker dev [SCRIPT] [--kv BINDING=NAMESPACE]... [--port 8787] [--endpoint NODE]
    rumor worker config [SCRIPT] [--kv BINDING=NAMESPACE]... --out FILE [--api-token-file F]

A Worker here is one ES-module JavaScript file. NODE is a node's gRPC address
(as for every `rumor` command); the node tells where its HTTP listener is, and
workerd's KV subrequests go there. Without SCRIPT and --kv, the project's
wrangler.toml / wrangler.json(c) gives ``main`` and ``kv_namespaces``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click

from rumor.client import workerd_config, workerd_install, wrangler_project
from rumor.client.cli_options import Settings, connection_options
from rumor.client.cli_output import KVGroup, fail, stderr
from rumor.client.models import NamespaceInfo
from rumor.client.sync import Client

DEFAULT_PORT = 8787
READY_TIMEOUT_S = 30.0
_IMPORT = re.compile(
    r"""^\s*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]"""
    r"""|^\s*import\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]|\brequire\s*\(\s*['"]([^'"]+)['"]""",
    re.M,
)
_BUILTIN_PREFIXES = ("cloudflare:", "node:", "workerd:")


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    script: Path
    compatibility_date: str
    bindings: list[workerd_config.KVBinding]


def checked_script(path: Path) -> Path:
    """``path`` if it is a Worker this command can run: one ES-module .js/.mjs file."""
    if not path.is_file():
        fail(f"The Worker file {path} does not exist.")
    supported = "rumor worker runs a Worker that is one ES-module JavaScript file (.js or .mjs)"
    if path.suffix not in (".js", ".mjs"):
        fail(
            f"{supported}; {path.name} is not. Build it into one .js file first, e.g."
            f" `npx esbuild {path.name} --bundle --format=esm --outfile=worker.js`."
        )
    text = path.read_text(errors="replace")
    for match in _IMPORT.finditer(text):
        specifier = next(group for group in match.groups() if group)
        if not specifier.startswith(_BUILTIN_PREFIXES):
            fail(
                f'{supported}; {path.name} imports "{specifier}". Bundle it into one file'
                f" first, e.g. `npx esbuild {path.name} --bundle --format=esm"
                " --outfile=worker.js`."
            )
    if not re.search(r"\bexport\s+default\b", text):
        fail(
            f"{supported} with `export default {{ fetch(request, env) {{ ... }} }}`;"
            f" {path.name} has no default export (service-worker syntax is not supported)."
        )
    return path.resolve()


def _parse_kv(option: str) -> tuple[str, str]:
    binding, sep, namespace = option.partition("=")
    if not sep or not binding or not namespace:
        fail(f"--kv takes BINDING=NAMESPACE (a namespace id or title), got {option!r}.")
    return binding, namespace


def _by_id_or_title(
    client: Client, namespaces: list[NamespaceInfo], namespace_id: str | None, title: str
) -> tuple[NamespaceInfo, str]:
    """The namespace with this id, else the one titled ``title`` (created if missing)."""
    for info in namespaces:
        if namespace_id is not None and info.id == namespace_id:
            return info, "matched by id"
    titled = [info for info in namespaces if info.title == title]
    if len(titled) > 1:
        fail(f'Several namespaces are titled "{title}"; give the id instead.')
    if titled:
        return titled[0], f'matched by title "{title}"'
    info = client.namespaces.create(title)
    namespaces.append(info)
    return info, f'created with title "{title}"'


def resolve(client: Client, script: str | None, kv_options: tuple[str, ...]) -> WorkerSetup:
    """The Worker, its compatibility date and its bindings, saying which namespace each uses."""
    namespaces = client.namespaces.list()
    bindings: list[workerd_config.KVBinding] = []
    compatibility_date = workerd_config.DEFAULT_COMPATIBILITY_DATE
    if script is None and not kv_options:
        try:
            project = wrangler_project.load(Path.cwd())
        except wrangler_project.ProjectError as exc:
            fail(str(exc))
        stderr.print(f"Using {project.config_path.name}: main = {project.main.name}")
        path = project.main
        compatibility_date = project.compatibility_date or compatibility_date
        declared = [(kv.binding, kv.id, kv.binding) for kv in project.kv_namespaces]
    else:
        if script is None:
            fail("Give the Worker's file (SCRIPT) along with --kv.")
        path = Path(script)
        declared = []
        for option in kv_options:
            binding, namespace = _parse_kv(option)
            declared.append((binding, namespace, namespace))
    for binding, namespace_id, title in declared:
        info, how = _by_id_or_title(client, namespaces, namespace_id, title)
        stderr.print(f"Binding {binding} → namespace {info.id} ({how})")
        bindings.append(workerd_config.KVBinding(binding, info.id))
    return WorkerSetup(checked_script(path), compatibility_date, bindings)


@dataclass(frozen=True, slots=True)
class NodeHttp:
    """The node's HTTP listener as workerd reaches it; ``https`` when it speaks HTTPS."""

    address: str
    https: workerd_config.Https | None = None

    def __str__(self) -> str:
        return f"https://{self.address}" if self.https else self.address


def node_http_address(client: Client, endpoint: str, http_ca: str | None = None) -> NodeHttp:
    """The HTTP listener of the node at ``endpoint``, as workerd can reach it
    (``https://HOST:PORT`` in the node's answer: HTTPS, trusting ``http_ca``)."""
    http = client.listeners().http
    if http is None:
        fail(
            f"The node at {endpoint} has no HTTP listener, and workerd reaches Rumor over"
            " HTTP: start the node with --http HOST:PORT."
        )
    secure = http.startswith("https://")
    host, _, port = http.removeprefix("https://").rpartition(":")
    if host in ("0.0.0.0", "[::]", ""):  # bound to every address: reach it where gRPC is
        host = endpoint.rpartition(":")[0] or "127.0.0.1"
    if not secure:
        return NodeHttp(f"{host}:{port}")
    try:
        ca_pem = Path(http_ca).read_text() if http_ca else ""
    except OSError as exc:
        fail(f'Cannot read "{http_ca}": {exc.strerror}')
    return NodeHttp(f"{host}:{port}", workerd_config.Https(host.strip("[]"), ca_pem))


def _token(settings: Settings, token_file: str | None) -> str | None:
    if token_file:
        try:
            return Path(token_file).read_text().strip() or None
        except OSError as exc:
            fail(f'Cannot read "{token_file}": {exc.strerror}')
    return settings.api_token


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (it may hold an API token)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def render_for(
    setup: WorkerSetup, config_path: Path, node_http: NodeHttp, listen: str, token: str | None
) -> str:
    return workerd_config.render(
        script=os.path.relpath(setup.script, config_path.parent),
        bindings=setup.bindings,
        node_http=node_http.address,
        listen=listen,
        api_token=token,
        compatibility_date=setup.compatibility_date,
        module_name=setup.script.name,
        https=node_http.https,
    )


@click.group("worker", cls=KVGroup)
@connection_options
@click.pass_context
def worker(
    ctx: click.Context, endpoint: str, api_token: str | None, ca: str | None, timeout: float
) -> None:
    """Run Workers in workerd against a Rumor cluster.

    --endpoint, --api-token, --ca and --timeout may be given anywhere on the line."""
    ctx.obj = Settings(endpoint, api_token, ca, timeout)


http_ca_option = click.option(
    "--http-ca",
    "http_ca",
    envvar="RUMOR_HTTP_CA",
    default=None,
    type=click.Path(dir_okay=False),
    help="CA of the node's HTTPS listener, for workerd to trust (env RUMOR_HTTP_CA).",
)
kv_option = click.option(
    "--kv",
    "kv_options",
    multiple=True,
    metavar="BINDING=NAMESPACE",
    help="Bind env.BINDING to a namespace (id, or title: created if missing). Repeatable.",
)


@worker.command("config")
@click.argument("script", required=False)
@kv_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Config file.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address workerd listens on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port workerd listens on.")
@click.option("--api-token-file", default=None, type=click.Path(dir_okay=False), help="Token file.")
@http_ca_option
@click.pass_obj
def worker_config(
    settings: Settings,
    script: str | None,
    kv_options: tuple[str, ...],
    out: str,
    ip: str,
    port: int,
    api_token_file: str | None,
    http_ca: str | None,
) -> None:
    """Write the workerd config (Cap'n Proto) for running workerd yourself.

    The token comes from --api-token-file or RUMOR_API_TOKEN and is written only
    into the file (mode 0600), never printed."""
    token = _token(settings, api_token_file)
    with Client(settings.endpoints, api_token=token, timeout=settings.timeout) as client:
        setup = resolve(client, script, kv_options)
        node_http = node_http_address(client, settings.endpoints[0], http_ca)
    path = Path(out).resolve()
    write_private(path, render_for(setup, path, node_http, f"{ip}:{port}", token))
    stderr.print(f"Wrote {out} (mode 0600). Run it with: workerd serve {out}")


def _wait_until_serving(process: subprocess.Popen[bytes], ip: str, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(f"workerd exited with status {process.returncode} before serving (see above).")
        try:
            with socket.create_connection((ip, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # waiting for another process to bind: nothing to wait on
    process.terminate()
    fail(f"workerd did not listen on {ip}:{port} within {READY_TIMEOUT_S:.0f} s.")


def _raise_interrupt(signum: int, frame: FrameType | None) -> Any:
    raise KeyboardInterrupt


@worker.command("dev")
@click.argument("script", required=False)
@kv_option
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address workerd listens on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port workerd listens on.")
@http_ca_option
@click.pass_obj
def worker_dev(
    settings: Settings,
    script: str | None,
    kv_options: tuple[str, ...],
    ip: str,
    port: int,
    http_ca: str | None,
) -> None:
    """Serve SCRIPT (an ES-module Worker) in workerd, its KV bindings backed by Rumor."""
    with settings.client() as client:
        setup = resolve(client, script, kv_options)
        node_http = node_http_address(client, settings.endpoints[0], http_ca)
    try:
        binary = workerd_install.ensure_workerd()
    except workerd_install.WorkerdUnavailable as exc:
        fail(str(exc))
    run_dir = workerd_install.cache_dir() / "worker-dev" / f"{ip}-{port}"
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.capnp"
    write_private(
        config_path, render_for(setup, config_path, node_http, f"{ip}:{port}", settings.api_token)
    )
    stderr.print(
        f"workerd {workerd_install.WORKERD_VERSION}; KV through the node's HTTP listener"
        f" {node_http}"
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop workerd on SIGTERM too
    process = subprocess.Popen([str(binary), "serve", str(config_path)], stdout=sys.stderr)
    try:
        _wait_until_serving(process, ip, port)
        stderr.print(f"Ready on http://{ip}:{port}")
        process.wait()
        if process.returncode:
            fail(f"workerd exited with status {process.returncode}.")
    except KeyboardInterrupt:
        pass
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
