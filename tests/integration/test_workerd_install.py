"""workerd's install on first use: commands started at once on an empty cache install it once.

npm is replaced by a script on PATH that records each run, takes its time and
leaves the binary where npm would: what is tested is the lock around it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rumor.client.workerd_install import package_name

FAKE_NPM = """#!/bin/sh
echo "$*" >> "$NPM_RUNS"
prefix=""
while [ $# -gt 0 ]; do
  if [ "$1" = --prefix ]; then prefix="$2"; fi
  shift
done
sleep 0.5
mkdir -p "$prefix/node_modules/$WORKERD_PACKAGE/bin"
touch "$prefix/node_modules/$WORKERD_PACKAGE/bin/workerd"
"""

ENSURE = (
    "import sys; from pathlib import Path;"
    " from rumor.client.workerd_install import ensure_workerd;"
    " print(ensure_workerd(Path(sys.argv[1])))"
)


def test_commands_started_at_once_install_workerd_once(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, script in (("npm", FAKE_NPM), ("node", "#!/bin/sh\n")):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    runs = tmp_path / "npm-runs"
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "NPM_RUNS": str(runs),
        "WORKERD_PACKAGE": package_name(),
    }
    env.pop("RUMOR_WORKERD", None)
    cache = tmp_path / "cache"
    commands = [
        subprocess.Popen(
            [sys.executable, "-c", ENSURE, str(cache)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [command.communicate(timeout=60)[0].strip() for command in commands]
    assert [command.returncode for command in commands] == [0, 0, 0, 0]
    assert len(set(outputs)) == 1 and Path(outputs[0]).is_file()
    assert len(runs.read_text().splitlines()) == 1, "npm ran once for four commands"
