"""Every command in docs/operations.md runs, in order, as written, against real nodes.

Each line of a ``sh`` block runs in one scratch directory with the
environment the document names (``RUMOR_ENDPOINT`` a live node with a cluster
secret, ``RUMOR_CLUSTER_SECRET_FILE`` its secret). A ``rumor node`` line
starts a node in the background on a free port (the document's address is
mapped to it for the lines after). ``ssh`` and ``aws`` stand in for the
real ones: ``ssh HOST CMD`` runs CMD here, ``aws s3 cp - s3://B/K`` writes
standard input to ``s3/B/K``. The ``toml`` block is read as a node's
config file.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from rumor.client import Client
from rumor.node.config import Config
from tests.support.nodes import NodeProcess

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "operations.md").read_text()
BLOCKS = re.findall(r"```sh\n(.*?)```", DOC, flags=re.DOTALL)
TOML = re.findall(r"```toml\n(.*?)```", DOC, flags=re.DOTALL)
SECRET = "operations-doc-secret"
KEYS = 300

FAKE_SSH = '#!/bin/sh\nshift\nexec sh -c "$*"\n'
FAKE_AWS = (
    "#!/bin/sh\n"
    '[ "$1 $2 $3" = "s3 cp -" ] || { echo "fake aws: only s3 cp - URL" >&2; exit 2; }\n'
    'key="${4#s3://}"; mkdir -p "s3/$(dirname "$key")"; cat > "s3/$key"\n'
)


def test_the_document_shows_the_commands_it_promises() -> None:
    text = "\n".join(BLOCKS)
    for command in ("rumor admin backup", "rumor admin restore", "rumor node", "rumor kv import"):
        assert command in text
    assert len(TOML) == 1


def test_the_scheduled_backup_settings_are_a_nodes_config(tmp_path: Path) -> None:
    path = tmp_path / "rumor.toml"
    path.write_text(TOML[0])
    config = Config.load({}, env={}, config_file=path)
    config.check()
    assert (config.backup_dir, config.backup_interval, config.backup_keep) == (
        "/var/backups/rumor",
        3600,
        24,
    )


def test_every_command_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    fake = tmp_path / "bin"
    for directory in (work, fake):
        directory.mkdir()
    for name, script in (("ssh", FAKE_SSH), ("aws", FAKE_AWS)):
        (fake / name).write_text(script)
        (fake / name).chmod(0o755)
    (work / "cluster-secret").write_text(SECRET + "\n")
    live = NodeProcess(
        tmp_path / "live", "--cluster-secret-file", str(work / "cluster-secret"),
        cluster_secret=SECRET,
    ).start()  # fmt: skip
    started: list[NodeProcess] = []
    addresses = {"127.0.0.1:7401": live.address}
    env = {
        **os.environ,
        "PATH": f"{fake}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RUMOR_ENDPOINT": live.address,
        "RUMOR_CLUSTER_SECRET_FILE": "cluster-secret",
    }
    try:
        with Client(live.address) as client:
            sessions = client.namespace(client.namespaces.create("SESSIONS").id)
            sessions.bulk_put([{"key": f"user:{i}", "value": f"v{i}"} for i in range(KEYS)])
        for block in BLOCKS:
            for written in block.splitlines():
                if not written.strip():
                    continue
                line = written
                for documented, real in addresses.items():
                    line = line.replace(documented, real)
                if line.startswith("rumor node "):
                    node, documented = _start_node(line, work)
                    started.append(node)
                    addresses[documented] = node.address
                    continue
                ran = subprocess.run(
                    ["bash", "-c", f"set -o pipefail; {line}"],
                    cwd=work, env=env, capture_output=True, text=True, timeout=300,
                )  # fmt: skip
                assert ran.returncode == 0, f"{line}\n{ran.stdout}\n{ran.stderr}"

        assert len(list((work / "backups" / "node1" / "backups").glob("*.json"))) == 2
        for copy in ("node1.tar.gz", "node1.tar", "s3/my-bucket/rumor/node1.tar"):
            assert (work / copy).stat().st_size > 1000, copy
        assert (work / "restored" / "from-stream" / "CURRENT").exists()
        restored, joined = started
        assert restored.node_id != live.node_id
        with Client(joined.address) as client:  # the empty node took the restored data
            ns = client.namespace(_namespace_id(client, "SESSIONS"))
            assert ns.get("user:7") == "v7"
        with Client(live.address) as client:  # brought back into the running cluster
            ns = client.namespace(_namespace_id(client, "SESSIONS-RESTORED"))
            assert len(list(ns.iter_keys())) == KEYS
            assert ns.get(f"user:{KEYS - 1}") == f"v{KEYS - 1}"
    finally:
        for node in started:
            node.stop()
        live.stop()


def _start_node(line: str, work: Path) -> tuple[NodeProcess, str]:
    """Start ``rumor node ...`` as the document says, on a free port; returns it and
    the address the document gave it."""
    args = shlex.split(line.split("#", 1)[0])[2:]
    data_dir = args[args.index("--data-dir") + 1]
    documented = args[args.index("--listen") + 1]
    rest = [a for i, a in enumerate(args) if a not in ("--data-dir", "--listen")
            and args[i - 1] not in ("--data-dir", "--listen")]  # fmt: skip
    (work / data_dir).parent.mkdir(parents=True, exist_ok=True)  # for the node's log
    node = NodeProcess(work / data_dir, *rest).start(120)
    return node, documented


def _namespace_id(client: Client, title: str) -> str:
    (found,) = [ns.id for ns in client.namespaces.list() if ns.title == title]
    return found
