"""deploy/ stays in step with the node: files parse, flags and settings exist, ports agree.

Static checks (test_docker.py runs the image and the Compose file): every YAML parses,
every TOML key is a Config setting, every ``--flag`` is one `rumor node --help` lists,
the gRPC (7401) and HTTP (8781) ports agree everywhere, and every file referenced is
present or mounted.
"""

from __future__ import annotations

import configparser
import functools
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from rumor.node.config import Config

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
GRPC_PORT = 7401
HTTP_PORT = 8781
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SETTINGS = {setting.name for setting in Config.settings()}


@functools.cache
def node_flags() -> frozenset[str]:
    result = subprocess.run(
        [str(BIN / "rumor"), "node", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return frozenset(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", result.stdout, re.MULTILINE))


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_objects() -> dict[str, dict[str, Any]]:
    """Every manifest under deploy/k8s by kind (one object of each kind)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml(path):
            assert doc["kind"] not in objects or doc["kind"] == "Service", path
            if doc["kind"] == "Service":
                headless = doc["spec"].get("clusterIP") == "None"
                objects["HeadlessService" if headless else "Service"] = doc
            else:
                objects[doc["kind"]] = doc
    return objects


def compose() -> dict[str, Any]:
    (doc,) = load_yaml(DEPLOY / "docker-compose.yml")
    assert isinstance(doc, dict)
    return doc


def statefulset_container() -> dict[str, Any]:
    (container,) = k8s_objects()["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_args(keyword: str) -> list[list[str]]:
    """The exec-form (JSON) arguments of every ``keyword`` instruction."""
    found = []
    for name, rest in dockerfile_instructions():
        if name == keyword:
            found.append(json.loads(rest[rest.index("[") :]))
    return found


def systemd_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / "rumor.service").read_text())
    return parser


def exec_start() -> list[str]:
    return shlex.split(systemd_unit()["Service"]["ExecStart"])


def flag_value(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def check_toml(path: Path) -> Config:
    keys = tomllib.loads(path.read_text()).keys()
    unknown = {key.replace("-", "_") for key in keys} - SETTINGS
    assert not unknown, f"{path.name}: not Config settings: {sorted(unknown)}"
    return Config.load({}, env={}, config_file=path)


# --- Everything parses -------------------------------------------------------------------------


def test_every_deploy_file_exists() -> None:
    for relative in (
        "deploy/Dockerfile",
        "deploy/docker-compose.yml",
        "deploy/rumor.toml",
        "deploy/systemd/rumor.service",
        "deploy/k8s/statefulset.yaml",
        "deploy/k8s/service-headless.yaml",
        "deploy/k8s/service.yaml",
        "deploy/k8s/pdb.yaml",
        "deploy/k8s/configmap.yaml",
        "docs/deploy.md",
    ):
        assert (ROOT / relative).is_file(), relative


@pytest.mark.parametrize(
    "path",
    [DEPLOY / "docker-compose.yml", *sorted(K8S.glob("*.yaml"))],
    ids=lambda path: path.name,
)
def test_yaml_parses(path: Path) -> None:
    docs = load_yaml(path)
    assert docs
    for doc in docs:
        assert isinstance(doc, dict)


def test_k8s_manifests_are_namespace_less_and_complete() -> None:
    objects = k8s_objects()
    assert set(objects) == {
        "StatefulSet",
        "HeadlessService",
        "Service",
        "PodDisruptionBudget",
        "ConfigMap",
    }
    # The Secret is made by the operator (docs/deploy.md): a placeholder applied with
    # the rest would overwrite the real one.
    for kind, doc in objects.items():
        assert "namespace" not in doc["metadata"], kind


# --- Settings ----------------------------------------------------------------------------------


def test_sample_toml_uses_real_settings() -> None:
    config = check_toml(DEPLOY / "rumor.toml")
    assert config.data_dir == "/var/lib/rumor"


def test_configmap_toml_uses_real_settings(tmp_path: Path) -> None:
    data = k8s_objects()["ConfigMap"]["data"]
    path = tmp_path / "rumor.toml"
    path.write_text(data["rumor.toml"])
    config = check_toml(path)
    assert config.listen == f"0.0.0.0:{GRPC_PORT}"
    assert config.http == f"0.0.0.0:{HTTP_PORT}"
    assert config.data_dir == "/var/lib/rumor"


def test_env_settings_are_real() -> None:
    # Every setting has a RUMOR_* variable; the cluster secret is read only from the
    # environment (or a file), never from a flag, so it is not a setting.
    env_names = {f"RUMOR_{name.upper()}" for name in SETTINGS} | {"RUMOR_CLUSTER_SECRET"}
    used = set(re.findall(r"RUMOR_[A-Z_]+", (DEPLOY / "Dockerfile").read_text()))
    for service in compose()["services"].values():
        used |= set(service.get("environment", {}))
    used |= {
        env["name"] for env in statefulset_container()["env"] if env["name"].startswith("RUMOR_")
    }
    used |= set(re.findall(r"RUMOR_[A-Z_]+", (DEPLOY / "systemd" / "rumor.service").read_text()))
    assert used
    assert used <= env_names, sorted(used - env_names)


# --- Flags -------------------------------------------------------------------------------------


def flags_in(args: list[str]) -> set[str]:
    return {flag for arg in args for flag in FLAG.findall(str(arg))}


def test_help_lists_the_flags_used() -> None:
    assert {"--listen", "--advertise", "--seeds", "--http", "--config"} <= node_flags()


def test_dockerfile_flags_exist() -> None:
    (cmd,) = dockerfile_args("CMD")
    assert cmd[0] == "node"
    assert flags_in(cmd) <= node_flags(), sorted(flags_in(cmd) - node_flags())


def test_compose_flags_exist() -> None:
    for name, service in compose()["services"].items():
        command = service["command"]
        assert command[0] == "node", name
        assert flags_in(command) <= node_flags(), (name, sorted(flags_in(command) - node_flags()))


def test_k8s_flags_exist() -> None:
    container = statefulset_container()
    args = [*container.get("command", []), *container["args"]]
    assert args[0] == "node"
    assert flags_in(args) <= node_flags(), sorted(flags_in(args) - node_flags())


def test_systemd_flags_exist() -> None:
    args = exec_start()
    assert flags_in(args) <= node_flags(), sorted(flags_in(args) - node_flags())


# --- Compose topology --------------------------------------------------------------------------


def test_compose_three_nodes_seeded_by_node1() -> None:
    doc = compose()
    services = doc["services"]
    assert sorted(services) == ["node1", "node2", "node3"]
    for index, (name, service) in enumerate(sorted(services.items()), start=1):
        command = service["command"]
        assert flag_value(command, "--listen") == f"0.0.0.0:{GRPC_PORT}"
        assert flag_value(command, "--advertise") == f"{name}:{GRPC_PORT}"
        assert flag_value(command, "--http") == f"0.0.0.0:{HTTP_PORT}"
        if name == "node1":
            assert "--seeds" not in command
        else:
            assert flag_value(command, "--seeds") == f"node1:{GRPC_PORT}"
        # Published on the host's loopback only.
        assert sorted(service["ports"]) == sorted(
            [
                f"127.0.0.1:{GRPC_PORT + index - 1}:{GRPC_PORT}",
                f"127.0.0.1:{HTTP_PORT + index - 1}:{HTTP_PORT}",
            ]
        )
        (volume,) = service["volumes"]
        source, _, target = volume.partition(":")
        assert target == "/var/lib/rumor"
        assert source in doc["volumes"], source


def test_compose_runs_with_compose_v1() -> None:
    """docker-compose 1.29 refuses a top-level ``name`` and cannot pass a build secret:
    the file names the image `docker build` makes and has no build section."""
    doc = compose()
    assert "name" not in doc
    images = {service["image"] for service in doc["services"].values()}
    assert images == {"rumor:0.1.0"}
    assert all("build" not in service for service in doc["services"].values())
    for service in doc["services"].values():
        assert service["restart"].startswith("on-failure:")  # not for ever (exit 76, 78)


# --- Dockerfile --------------------------------------------------------------------------------


def test_dockerfile_shape() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("ARG", "BASE=debian:bookworm-slim")
    assert next(rest for keyword, rest in instructions if keyword == "FROM").startswith("${BASE}")
    user = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert dockerfile_args("VOLUME") == [["/var/lib/rumor"]]
    assert "HEALTHCHECK" in keywords
    (cmd,) = dockerfile_args("CMD")
    assert flag_value(cmd, "--listen") == f"0.0.0.0:{GRPC_PORT}"
    assert flag_value(cmd, "--http") == f"0.0.0.0:{HTTP_PORT}"
    assert flag_value(cmd, "--data-dir") == "/var/lib/rumor"


def test_dockerfile_installs_pinned_dependencies_and_no_plotting() -> None:
    runs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    assert "--no-deps -r /tmp/requirements.txt" in runs
    assert "--mount=type=secret,id=ca_bundle" in runs  # the CA is mounted, never copied
    pins = [
        line
        for line in (DEPLOY / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert pins and all(re.fullmatch(r"[a-z0-9-]+==[\w.]+", pin) for pin in pins), pins
    names = {pin.split("==")[0] for pin in pins}
    assert not names & {"matplotlib", "numpy", "pillow", "fonttools"}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for requirement in pyproject["project"]["dependencies"]:
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()
        assert name in names, f"{name} is a dependency but not pinned in deploy/requirements.txt"
    assert "matplotlib>=3.8" in pyproject["project"]["optional-dependencies"]["lab"]


def test_the_dockerfile_copies_every_package_pyproject_maps() -> None:
    """The image's wheel is built from what the Dockerfile copies: every package
    directory pyproject.toml maps, pyproject.toml and the README it names."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dirs = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    copied = set()
    for keyword, rest in dockerfile_instructions():
        words = rest.split()
        if keyword == "COPY" and not words[0].startswith("--from"):
            copied |= {source.rstrip("/") for source in words[:-1]}
    tops = {Path(directory).parts[0] for directory in package_dirs}
    assert tops | {"pyproject.toml", pyproject["project"]["readme"]} <= copied, copied


def test_the_build_context_holds_every_package_pyproject_maps() -> None:
    """.dockerignore must not drop a package the Dockerfile copies."""
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dirs = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert package_dirs >= {"node", "client", "bench", "experiments"}
    for needed in [*package_dirs, "pyproject.toml", "README.md", "deploy/requirements.txt"]:
        assert (ROOT / needed).exists(), needed
        for pattern in ignored:
            assert not Path(needed).is_relative_to(pattern.lstrip("*/") or "."), (needed, pattern)
    assert {".venv", ".rumor", ".git", "deploy/secrets"} <= set(ignored)


def test_pyproject_lists_every_package() -> None:
    """The image installs the wheel setuptools builds from pyproject's package list: a
    sub-package missing from it is missing from the image."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for package, directory in setuptools["package-dir"].items():
        for init in (ROOT / directory).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / directory)
            found.add(".".join([package, *relative.parts]))
    assert found == set(setuptools["packages"]), found ^ set(setuptools["packages"])


def test_dockerfile_healthcheck_is_python_only() -> None:
    (check,) = dockerfile_args("HEALTHCHECK")
    assert check[:2] == ["python", "-c"]
    code = check[2]
    compile(code, "<healthcheck>", "exec")  # a valid one-liner
    assert f":{GRPC_PORT}" in code or f":{HTTP_PORT}/healthz" in code


# --- Kubernetes --------------------------------------------------------------------------------


def test_statefulset_shape() -> None:
    objects = k8s_objects()
    statefulset = objects["StatefulSet"]
    spec = statefulset["spec"]
    assert spec["replicas"] == 3
    assert spec["serviceName"] == objects["HeadlessService"]["metadata"]["name"]
    (claim,) = spec["volumeClaimTemplates"]
    container = statefulset_container()
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/rumor"
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert {"cpu", "memory"} <= set(resources["limits"])
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()


def test_statefulset_addresses_follow_the_headless_service() -> None:
    objects = k8s_objects()
    service = objects["HeadlessService"]["metadata"]["name"]
    name = objects["StatefulSet"]["metadata"]["name"]
    container = statefulset_container()
    args = container["args"]
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    domain = f"{service}.$(NAMESPACE).svc.cluster.local:{GRPC_PORT}"
    assert flag_value(args, "--advertise") == f"$(POD_NAME).{domain}"
    # Every ordinal is a seed; each node skips its own advertise address.
    replicas = objects["StatefulSet"]["spec"]["replicas"]
    seeds = flag_value(args, "--seeds").split(",")
    assert seeds == [f"{name}-{ordinal}.{domain}" for ordinal in range(replicas)]


def test_statefulset_spreads_pods_and_mounts_no_api_token() -> None:
    pod = k8s_objects()["StatefulSet"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    anti = pod["affinity"]["podAntiAffinity"]
    preferred = anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    terms = [
        *anti.get("requiredDuringSchedulingIgnoredDuringExecution", []),
        *(term["podAffinityTerm"] for term in preferred),
    ]
    assert any(
        t["topologyKey"] == "kubernetes.io/hostname"
        and t["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "rumor"}
        for t in terms
    )


def test_statefulset_config_is_mounted_from_the_configmap() -> None:
    objects = k8s_objects()
    container = statefulset_container()
    config_path = Path(flag_value(container["args"], "--config"))
    volumes = {
        volume["name"]: volume
        for volume in objects["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
    }
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    config_map = volumes[mount["name"]]["configMap"]
    assert config_map["name"] == objects["ConfigMap"]["metadata"]["name"]
    items = {item["path"]: item["key"] for item in config_map.get("items", [])}
    key = items.get(config_path.name, config_path.name)
    assert key in objects["ConfigMap"]["data"]


def test_statefulset_secrets_are_files_from_the_secret() -> None:
    objects = k8s_objects()
    container = statefulset_container()
    env = {item["name"]: item for item in container["env"]}
    assert "RUMOR_API_TOKEN" not in env and "RUMOR_CLUSTER_SECRET" not in env
    volumes = {
        volume["name"]: volume
        for volume in objects["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
    }
    # The keys the documented `kubectl create secret` gives the Secret.
    docs = (ROOT / "docs" / "deploy.md").read_text()
    created = re.search(r"kubectl -n rumor create secret generic (\S+)(.*?)\n(?!\s)", docs, re.S)
    assert created, "docs/deploy.md must create the Secret"
    secret = {"metadata": {"name": created.group(1)}}
    keys = set(re.findall(r"--from-(?:literal|file)=([\w-]+)=", created.group(2)))
    for variable in ("RUMOR_API_TOKEN_FILE", "RUMOR_CLUSTER_SECRET_FILE"):
        path = Path(env[variable]["value"])
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent))
        assert mount.get("readOnly") is True, variable
        source = volumes[mount["name"]]["secret"]
        assert source["secretName"] == secret["metadata"]["name"]
        items = {item["path"]: item["key"] for item in source.get("items", [])}
        assert items.get(path.name, path.name) in keys, variable


def test_k8s_ports_and_probes_agree() -> None:
    objects = k8s_objects()
    container = statefulset_container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": GRPC_PORT, "http": HTTP_PORT}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"]["port"] == GRPC_PORT, probe
    if "startupProbe" in container:
        assert container["startupProbe"]["grpc"]["port"] == GRPC_PORT
    labels = objects["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("HeadlessService", "Service"):
        spec = objects[kind]["spec"]
        assert spec["selector"].items() <= labels.items(), kind
        for port in spec["ports"]:
            target = port.get("targetPort", port["port"])
            target_number = ports[target] if isinstance(target, str) else target
            assert target_number == {"grpc": GRPC_PORT, "http": HTTP_PORT}[port["name"]]
            assert port["port"] == target_number, (kind, port)


def test_headless_service_and_pdb() -> None:
    objects = k8s_objects()
    headless = objects["HeadlessService"]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    pdb = objects["PodDisruptionBudget"]["spec"]
    assert pdb["maxUnavailable"] == 1
    labels = objects["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


# --- systemd -----------------------------------------------------------------------------------


def test_systemd_unit() -> None:
    unit = systemd_unit()
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    args = exec_start()
    assert Path(args[0]).name == "rumor"
    assert args[1] == "node"
    config_path = Path(flag_value(args, "--config"))
    assert config_path.name == (DEPLOY / "rumor.toml").name
    assert service["User"] == "rumor"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "true"
    assert service["ProtectSystem"] == "strict"
    assert "/var/lib/rumor" in service["ReadWritePaths"].split()
    assert int(service["LimitNOFILE"]) >= 4096
    assert unit["Install"]["WantedBy"]


def test_systemd_data_and_checkpoint_dirs_are_writable() -> None:
    config = check_toml(DEPLOY / "rumor.toml")
    service = systemd_unit()["Service"]
    writable = service["ReadWritePaths"].split()
    state = [f"/var/lib/{name}" for name in service["StateDirectory"].split()]
    for directory in (config.data_dir, config.checkpoint_dir):
        assert directory
        assert any(Path(directory).is_relative_to(path) for path in writable), directory
        assert any(Path(directory).is_relative_to(path) for path in state), directory


def test_systemd_does_not_restart_what_restarting_cannot_fix() -> None:
    # 78: removed from the cluster; 76: the node id is in use.
    assert systemd_unit()["Service"]["RestartPreventExitStatus"].split() == ["76", "78"]


# --- Docs --------------------------------------------------------------------------------------


def test_docs_cover_each_deployment() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for needle in (
        "docker compose",
        "docker-compose",
        "rumor cluster status --endpoint 127.0.0.1:7401",
        "kubectl",
        "apply -f deploy/k8s/",
        "port-forward",
        "systemctl status",
        "journalctl",
    ):
        assert needle in text, needle


# --- Secure by default: every deployment listens off loopback, so each must carry a
# cluster secret and an API token, from files -------------------------------------------------


def test_compose_secrets_are_files() -> None:
    doc = compose()
    declared = doc["secrets"]
    for name, service in doc["services"].items():
        env = service["environment"]
        assert "RUMOR_API_TOKEN" not in env and "RUMOR_CLUSTER_SECRET" not in env, name
        used = set(service["secrets"])
        for variable in ("RUMOR_CLUSTER_SECRET_FILE", "RUMOR_API_TOKEN_FILE"):
            path = Path(env[variable])
            assert path.parent == Path("/run/secrets"), (name, variable)
            assert path.name in used and path.name in declared, (name, variable)
    for secret in declared.values():
        source = (DEPLOY / secret["file"]).resolve()
        assert source.is_relative_to(DEPLOY / "secrets"), source
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/secrets/" in ignored  # generated per deployment, never committed


def test_systemd_secrets_are_credentials() -> None:
    text = (DEPLOY / "systemd" / "rumor.service").read_text()
    credentials = dict(re.findall(r"^LoadCredential=([\w-]+):(\S+)$", text, re.MULTILINE))
    args = exec_start()
    for flag in ("--cluster-secret-file", "--api-token-file"):
        path = flag_value(args, flag)
        directory, _, name = path.rpartition("/")
        assert directory == "${CREDENTIALS_DIRECTORY}", (flag, path)
        assert name in credentials, (flag, name)
        assert Path(credentials[name]).is_absolute()
    assert "--api-token" not in args  # a token in argv shows in `ps`


def test_no_deployment_passes_a_secret_in_argv() -> None:
    commands = [*dockerfile_args("CMD"), exec_start(), statefulset_container()["args"]]
    commands += [service["command"] for service in compose()["services"].values()]
    for command in commands:
        assert "--api-token" not in command, command
