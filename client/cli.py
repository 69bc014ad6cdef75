"""`rumor kv`: wrangler-style commands on a Rumor cluster, contributed through rumor.cli.

    rumor kv namespace create|list|rename|delete
    rumor kv key put KEY [VALUE] (--namespace-id ID | --namespace TITLE) [--path F]
                         [--ttl N] [--expiration N] [--metadata JSON]
    rumor kv key get KEY [--text] | key list [--prefix P] | key delete KEY
    rumor kv bulk put FILE.json | bulk delete FILE.json [--force] | bulk get FILE.json
    rumor kv export | kv import   (JSON lines, Cloudflare migration: rumor.client.transfer_cli)

Any of them takes --session TOKEN (served only by a node that has seen what the
token names) and --print-session (the session's new token, last on stderr).

Every error is one line on stderr and a non-zero exit status; never a traceback
(rumor.client.cli_output). The bulk commands' JSON files are checked whole before
anything is sent (rumor.client.bulk_files).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from rumor.client.bulk_files import checked_delete_keys, checked_put_items, read_json_file
from rumor.client.cli_options import Settings, connection_options
from rumor.client.cli_output import KVGroup, fail, stderr
from rumor.client.sync import Client, KVNamespace

BATCH_SIZE = 1000
F = TypeVar("F", bound=Callable[..., Any])


@click.group("kv", cls=KVGroup)
@connection_options
@click.option(
    "--session",
    "session_token",
    default=None,
    help="A session token: read and write after what it names (read-your-writes).",
)
@click.option(
    "--print-session", is_flag=True, help="Print the session's new token on stderr, last."
)
@click.pass_context
def kv(
    ctx: click.Context,
    endpoint: str,
    api_token: str | None,
    ca: str | None,
    timeout: float,
    session_token: str | None,
    print_session: bool,
) -> None:
    """Manage namespaces and keys, like `wrangler kv`.

    --endpoint, --api-token, --ca, --timeout, --session and --print-session may be
    given anywhere on the line."""
    ctx.obj = Settings(endpoint, api_token, ca, timeout)
    ctx.obj.session = session_token
    ctx.obj.print_session = print_session


def namespace_options(command: F) -> F:
    command = click.option(
        "--namespace", "namespace_title", default=None, help="The namespace's title."
    )(command)
    return click.option("--namespace-id", default=None, help="The namespace's id.")(command)


def resolve_namespace(client: Client, namespace_id: str | None, title: str | None) -> str:
    if namespace_id and title:
        fail("Give either --namespace-id or --namespace, not both.")
    if namespace_id:
        return namespace_id
    if not title:
        fail("Give the namespace with --namespace-id ID or --namespace TITLE.")
    matches = [info.id for info in client.namespaces.list() if info.title == title]
    if not matches:
        fail(f'No namespace is titled "{title}".')
    if len(matches) > 1:
        fail(f'Several namespaces are titled "{title}": {", ".join(matches)}; use --namespace-id.')
    return matches[0]


def open_namespace(
    settings: Settings, namespace_id: str | None, title: str | None
) -> tuple[Client, KVNamespace]:
    """The client and the namespace; within a session if --session or --print-session."""
    client = settings.client()
    resolved = resolve_namespace(client, namespace_id, title)
    if settings.session is None and not settings.print_session:
        return client, client.namespace(resolved)
    session = client.session(settings.session)
    if settings.print_session:
        # Printed however the command ends: a failed call leaves the token valid.
        click.get_current_context().call_on_close(lambda: click.echo(session.token, err=True))
    return client, session.namespace(resolved)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# ---- namespaces ---------------------------------------------------------------


@kv.group("namespace", cls=KVGroup)
def namespace_group() -> None:
    """Create, list, rename and delete namespaces."""


@namespace_group.command("create")
@click.argument("title")
@click.pass_obj
def namespace_create(settings: Settings, title: str) -> None:
    """Create a namespace titled TITLE."""
    with settings.client() as client:
        info = client.namespaces.create(title)
    stderr.print(f'Created namespace "{info.title}" with id {info.id}')
    print_json({"id": info.id, "title": info.title})


@namespace_group.command("list")
@click.pass_obj
def namespace_list(settings: Settings) -> None:
    """List every namespace as JSON."""
    with settings.client() as client:
        print_json([{"id": i.id, "title": i.title} for i in client.namespaces.list()])


@namespace_group.command("rename")
@namespace_options
@click.argument("new_title")
@click.pass_obj
def namespace_rename(
    settings: Settings, namespace_id: str | None, namespace_title: str | None, new_title: str
) -> None:
    """Give a namespace the title NEW_TITLE."""
    with settings.client() as client:
        target = resolve_namespace(client, namespace_id, namespace_title)
        info = client.namespaces.rename(target, new_title)
    stderr.print(f'Renamed namespace {info.id} to "{info.title}"')


@namespace_group.command("delete")
@namespace_options
@click.pass_obj
def namespace_delete(
    settings: Settings, namespace_id: str | None, namespace_title: str | None
) -> None:
    """Delete a namespace and all its keys."""
    with settings.client() as client:
        target = resolve_namespace(client, namespace_id, namespace_title)
        client.namespaces.delete(target)
    stderr.print(f"Deleted namespace {target}")


# ---- keys ---------------------------------------------------------------------


@kv.group("key", cls=KVGroup)
def key_group() -> None:
    """Put, get, list and delete single keys."""


def parse_metadata(text: str | None) -> Any:
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        fail(f"--metadata must be valid JSON. Received: {text}")
    if not isinstance(parsed, dict):
        fail(f"--metadata must be a JSON object. Received: {text}")
    return parsed


@key_group.command("put")
@click.argument("key")
@click.argument("value", required=False)
@namespace_options
@click.option("--path", type=click.Path(dir_okay=False), help="Read the value from a file.")
@click.option("--ttl", type=int, default=None, help="Seconds until the key expires.")
@click.option("--expiration", type=int, default=None, help="Absolute expiry, epoch seconds.")
@click.option("--metadata", default=None, help="A JSON object stored with the key.")
@click.pass_obj
def key_put(
    settings: Settings,
    key: str,
    value: str | None,
    namespace_id: str | None,
    namespace_title: str | None,
    path: str | None,
    ttl: int | None,
    expiration: int | None,
    metadata: str | None,
) -> None:
    """Write VALUE (or the file at --path) under KEY."""
    if value is None and path is None:
        fail("Give a VALUE or --path FILE.")
    if value is not None and path is not None:
        fail("Give either a VALUE or --path FILE, not both.")
    parsed = parse_metadata(metadata)
    client, namespace = open_namespace(settings, namespace_id, namespace_title)
    with client:
        if path is not None:
            with Path(path).open("rb") as handle:
                namespace.put(
                    key, handle, expiration=expiration, expiration_ttl=ttl, metadata=parsed
                )
        else:
            namespace.put(key, value, expiration=expiration, expiration_ttl=ttl, metadata=parsed)
    stderr.print(f'Wrote key "{key}"')


@key_group.command("get")
@click.argument("key")
@namespace_options
@click.option("--text", is_flag=True, help="Decode the value as UTF-8 text.")
@click.pass_obj
def key_get(
    settings: Settings, key: str, namespace_id: str | None, namespace_title: str | None, text: bool
) -> None:
    """Print the value of KEY (raw bytes unless --text)."""
    client, namespace = open_namespace(settings, namespace_id, namespace_title)
    with client:
        chunks = namespace.get(key, type="stream")
        if chunks is None:
            fail("Value not found")
        if text:
            click.echo(b"".join(chunks).decode("utf-8", "replace"))
            return
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(chunk)
        out.flush()


@key_group.command("list")
@namespace_options
@click.option("--prefix", default=None, help="Only keys starting with this.")
@click.pass_obj
def key_list(
    settings: Settings, namespace_id: str | None, namespace_title: str | None, prefix: str | None
) -> None:
    """Print every key as a JSON array of {name, expiration?, metadata?}."""
    client, namespace = open_namespace(settings, namespace_id, namespace_title)
    with client:
        keys = []
        for info in namespace.iter_keys(prefix=prefix):
            entry: dict[str, Any] = {"name": info.name}
            if info.expiration is not None:
                entry["expiration"] = info.expiration
            if info.metadata is not None:
                entry["metadata"] = info.metadata
            keys.append(entry)
    print_json(keys)


@key_group.command("delete")
@click.argument("key")
@namespace_options
@click.pass_obj
def key_delete(
    settings: Settings, key: str, namespace_id: str | None, namespace_title: str | None
) -> None:
    """Delete KEY."""
    client, namespace = open_namespace(settings, namespace_id, namespace_title)
    with client:
        namespace.delete(key)
    stderr.print(f'Deleted key "{key}"')


# ---- bulk ---------------------------------------------------------------------


def batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]


def with_progress(label: str, items: Sequence[Any], send: Callable[[Sequence[Any]], int]) -> int:
    done = 0
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    ) as progress:
        task = progress.add_task(label, total=len(items))
        for batch in batches(items):
            done += send(batch)
            progress.update(task, advance=len(batch))
    return done


@kv.group("bulk", cls=KVGroup)
def bulk_group() -> None:
    """Put, delete and get many keys from a JSON file (wrangler's format)."""


@bulk_group.command("put")
@click.argument("file", type=click.Path(dir_okay=False))
@namespace_options
@click.pass_obj
def bulk_put(
    settings: Settings, file: str, namespace_id: str | None, namespace_title: str | None
) -> None:
    """Write every {key, value, ...} item of FILE, in batches of 1,000."""
    items = checked_put_items(file, read_json_file(file))
    client, namespace = open_namespace(settings, namespace_id, namespace_title)
    with client:
        count = with_progress("Uploading", items, namespace.bulk_put)
    stderr.print(f"Success! Uploaded {count} key-value pairs.")


@bulk_group.command("delete")
@click.argument("file", type=click.Path(dir_okay=False))
@namespace_options
@click.option("--force", "-f", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def bulk_delete(
    settings: Settings,
    file: str,
    namespace_id: str | None,
    namespace_title: str | None,
    force: bool,
) -> None:
    """Delete every key listed in FILE, in batches of 1,000."""
    keys = checked_delete_keys(file, read_json_file(file))
    client, namespace = open_namespace(settings, namespace_id, namespace_title)
    with client:
        if not force and not click.confirm(
            f"Delete {len(keys)} keys from namespace {namespace.id}?", err=True
        ):
            stderr.print("Not deleting keys.")
            return
        count = with_progress("Deleting", keys, namespace.bulk_delete)
    stderr.print(f"Success! Deleted {count} keys.")


@bulk_group.command("get")
@click.argument("file", type=click.Path(dir_okay=False))
@namespace_options
@click.pass_obj
def bulk_get(
    settings: Settings, file: str, namespace_id: str | None, namespace_title: str | None
) -> None:
    """Print a JSON object of key to value (null when missing) for the keys in FILE."""
    keys = checked_delete_keys(file, read_json_file(file))
    client, namespace = open_namespace(settings, namespace_id, namespace_title)
    result: dict[str, Any] = {}
    with client:
        for start in range(0, len(keys), 100):
            result.update(namespace.get(list(keys[start : start + 100]), type="text"))
    print_json(result)


# `kv export` and `kv import` (registered on `kv` by importing it) use the helpers above.
from rumor.client import transfer_cli  # noqa: E402, F401
