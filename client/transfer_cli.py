"""`rumor kv export` and `rumor kv import`: namespaces as JSON lines in wrangler's bulk
format, and migration to and from Cloudflare Workers KV (rumor.client.export).

    rumor kv export (--namespace-id ID | --namespace TITLE | --all) [--prefix P] [--output F]
    rumor kv export --namespace-id ID --to-cloudflare CF_NAMESPACE_ID [--prefix P]
    rumor kv import FILE (--namespace-id ID | --namespace TITLE | --all)
    rumor kv import --from-cloudflare CF_NAMESPACE_ID --namespace-id ID [--prefix P]

A progress file next to the output (FILE.progress) or, for Cloudflare, in the current
directory lets an interrupted run resume where it stopped; `--restart` ignores it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

from rumor.client.cli import kv, namespace_options, resolve_namespace
from rumor.client.cli_options import Settings
from rumor.client.cli_output import fail, stderr
from rumor.client.cloudflare_api import CloudflareCredentials, CloudflareError, CloudflareKV
from rumor.client.export import (
    ProgressFile,
    Tally,
    export_lines,
    export_to_cloudflare,
    import_from_cloudflare,
    import_lines,
)


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Tally]:
    """A Tally that drives a progress bar on a terminal (bytes when ``total`` is the
    input's size, else keys)."""
    columns: list[Any] = [TextColumn(label), TextColumn("{task.fields[keys]} keys")]
    if total is not None:
        columns[1:1] = [BarColumn(), DownloadColumn()]
    with Progress(
        *columns, console=stderr, transient=True, disable=not stderr.is_terminal
    ) as progress:
        task = progress.add_task(label, total=total, keys=0)

        def show(tally: Tally) -> None:
            progress.update(task, completed=tally.bytes_read, keys=tally.written)

        yield Tally(on_change=show)


def progress_path(given: str | None, default: Path, restart: bool) -> Path:
    chosen = Path(given) if given else default
    if chosen is not None and restart:
        chosen.unlink(missing_ok=True)
    return chosen


def summary(verb: str, tally: Tally, started: float) -> None:
    elapsed = max(time.monotonic() - started, 1e-9)
    skipped = f"; skipped {tally.skipped} expiring within a minute" if tally.skipped else ""
    stderr.print(
        f"Success! {verb} {tally.written} keys in {elapsed:.1f} s "
        f"({tally.written / elapsed:,.0f} keys/s){skipped}."
    )


def cloudflare(namespace_id: str) -> CloudflareKV:
    return CloudflareKV(CloudflareCredentials.from_environment(), namespace_id)


@contextmanager
def cloudflare_errors() -> Iterator[None]:
    """Cloudflare's refusals as one line, like the node's."""
    try:
        yield
    except CloudflareError as exc:
        fail(str(exc))


def transfer_options(command: Any) -> Any:
    command = click.option(
        "--restart", is_flag=True, help="Ignore the progress file and start from the beginning."
    )(command)
    command = click.option(
        "--progress-file",
        default=None,
        type=click.Path(dir_okay=False),
        help="Where to record how far the run got (default: beside the file).",
    )(command)
    return click.option("--prefix", default=None, help="Only keys starting with this.")(command)


@kv.command("export")
@namespace_options
@click.option("--all", "every", is_flag=True, help="Every namespace, each after its title.")
@click.option(
    "--output",
    "-o",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write here (resumable) instead of standard output.",
)
@click.option(
    "--to-cloudflare",
    "cf_namespace",
    default=None,
    metavar="CF_NAMESPACE_ID",
    help="Write into this Cloudflare Workers KV namespace instead (CLOUDFLARE_* env).",
)
@transfer_options
@click.pass_obj
def kv_export(
    settings: Settings,
    namespace_id: str | None,
    namespace_title: str | None,
    every: bool,
    output: str | None,
    cf_namespace: str | None,
    prefix: str | None,
    progress_file: str | None,
    restart: bool,
) -> None:
    """Write a namespace's keys as JSON lines (wrangler's bulk items), or copy them
    to Cloudflare."""
    started = time.monotonic()
    with cloudflare_errors(), settings.client() as client:
        if every and (namespace_id or namespace_title or cf_namespace):
            fail("--all exports every namespace: give no namespace and no --to-cloudflare.")
        target = None if every else resolve_namespace(client, namespace_id, namespace_title)
        if cf_namespace is not None:
            assert target is not None
            if output is not None:
                fail("Give either --output or --to-cloudflare, not both.")
            api = cloudflare(cf_namespace)
            identity = {"export": target, "to_cloudflare": cf_namespace, "prefix": prefix}
            default = Path(f"kv-export-{target}-to-{cf_namespace}.progress")
            path = progress_path(progress_file, default, restart)
            progress = ProgressFile(path, identity)
            with progress_bar("Copying to Cloudflare", None) as tally:
                export_to_cloudflare(client, api, target, prefix, progress, tally)
            progress.finish()
            summary("Copied", tally, started)
            return
        namespaces = [(info.id, info.title) for info in client.namespaces.list()] if every else None
        identity = {"export": target or "all", "prefix": prefix}
        if output is None:
            progress = ProgressFile(None, identity)
            with progress_bar("Exporting", None) as tally:
                export_lines(client, namespaces, target, prefix, sys.stdout.buffer, progress, tally)
        else:
            path = progress_path(progress_file, Path(output + ".progress"), restart)
            progress = ProgressFile(path, identity)
            with (
                resumable_output(output, progress) as out,
                progress_bar("Exporting", None) as tally,
            ):
                export_lines(client, namespaces, target, prefix, out, progress, tally)
        progress.finish()
    summary("Exported", tally, started)


@contextmanager
def resumable_output(output: str, progress: ProgressFile) -> Iterator[IO[bytes]]:
    """The output file, cut back to what the progress file says it holds when resuming."""
    state = progress.load()
    path = Path(output)
    offset = int(state.get("offset", -1)) if state else -1
    if 0 <= offset <= (path.stat().st_size if path.exists() else -1):
        with path.open("r+b") as out:
            out.truncate(offset)
            out.seek(0, 2)
            yield out
        return
    progress.finish()  # nothing to resume into: start from the beginning
    with path.open("wb") as out:
        yield out


@kv.command("import")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@namespace_options
@click.option("--all", "every", is_flag=True, help="Into the namespaces FILE's headers name.")
@click.option(
    "--from-cloudflare",
    "cf_namespace",
    default=None,
    metavar="CF_NAMESPACE_ID",
    help="Read this Cloudflare Workers KV namespace instead of a FILE (CLOUDFLARE_* env).",
)
@transfer_options
@click.pass_obj
def kv_import(
    settings: Settings,
    file: str | None,
    namespace_id: str | None,
    namespace_title: str | None,
    every: bool,
    cf_namespace: str | None,
    prefix: str | None,
    progress_file: str | None,
    restart: bool,
) -> None:
    """Write the JSON lines of FILE ('-': standard input) into a namespace in bulk
    batches, or copy a Cloudflare namespace."""
    started = time.monotonic()
    if (file is None) == (cf_namespace is None):
        fail("Give either a FILE or --from-cloudflare CF_NAMESPACE_ID.")
    with cloudflare_errors(), settings.client() as client:
        if every and (namespace_id or namespace_title or cf_namespace):
            fail("--all imports into the namespaces the file names: give no namespace.")
        target = None if every else resolve_namespace(client, namespace_id, namespace_title)
        if cf_namespace is not None:
            assert target is not None
            api = cloudflare(cf_namespace)
            identity = {"from_cloudflare": cf_namespace, "import": target, "prefix": prefix}
            default = Path(f"kv-import-{cf_namespace}-to-{target}.progress")
            path = progress_path(progress_file, default, restart)
            progress = ProgressFile(path, identity)
            with progress_bar("Copying from Cloudflare", None) as tally:
                import_from_cloudflare(client, api, target, prefix, progress, tally)
            progress.finish()
            summary("Copied", tally, started)
            return
        assert file is not None
        if prefix is not None:
            fail("--prefix applies to exports and Cloudflare copies; filter the file instead.")
        of_file: dict[str, Any] = {"import": target or "all", "file": file}
        if file != "-":  # a file changed since the interrupted run is read from the start
            stat = Path(file).stat()
            of_file.update(
                file=str(Path(file).resolve()), size=stat.st_size, mtime_ns=stat.st_mtime_ns
            )
        if file == "-":
            progress = ProgressFile(None, of_file)
            with progress_bar("Importing", None) as tally:
                import_lines(client, sys.stdin.buffer, "<stdin>", target, progress, tally)
        else:
            path = progress_path(progress_file, Path(file + ".progress"), restart)
            progress = ProgressFile(path, of_file)
            with (
                Path(file).open("rb") as source,
                progress_bar("Importing", Path(file).stat().st_size) as tally,
            ):
                import_lines(client, source, file, target, progress, tally)
        progress.finish()
    summary("Imported", tally, started)
