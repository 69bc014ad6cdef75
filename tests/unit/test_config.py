"""Config: flags > RUMOR_* environment > TOML file > defaults, one dataclass."""

from pathlib import Path

import pytest

from rumor.node.config import Config
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.settings import ConfigError


def test_defaults() -> None:
    config = Config.load({}, env={})
    assert config.listen == "127.0.0.1:7401"
    assert config.durability == "fsync"
    assert config.min_expiration_ttl == 60


def test_flags_beat_environment_beat_file(tmp_path: Path) -> None:
    toml = tmp_path / "rumor.toml"
    toml.write_text('listen = "127.0.0.1:1"\nmin-expiration-ttl = 5\nname = "from-file"\n')
    env = {"RUMOR_LISTEN": "127.0.0.1:2", "RUMOR_MIN_EXPIRATION_TTL": "7"}
    config = Config.load({"listen": "127.0.0.1:3", "name": None}, env=env, config_file=toml)
    assert config.listen == "127.0.0.1:3"
    assert config.min_expiration_ttl == 7
    assert config.name == "from-file"


def test_environment_values_are_converted() -> None:
    config = Config.load({}, env={"RUMOR_SWEEP_INTERVAL_MS": "25"})
    assert config.protocol().sweep_interval_ms == 25


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"durability": "sometimes"}, "durability must be one of fsync, wal"),
        ({"listen": "nowhere"}, "listen must be HOST:PORT"),
        ({"min_expiration_ttl": 0}, "min_expiration_ttl must be at least 1"),
        ({"max_upload_bytes_in_flight": 0}, "max_upload_bytes_in_flight must be at least 1"),
        ({"upload_idle_timeout_ms": 0}, "upload_idle_timeout_ms must be at least 1"),
        ({"upload_admission_timeout_ms": -1}, "upload_admission_timeout_ms must be at least 0"),
    ],
)
def test_bad_values_are_named(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.load(flags, env={})


def test_the_upload_budget_is_made_from_its_settings(tmp_path: Path) -> None:
    toml = tmp_path / "rumor.toml"
    toml.write_text("upload-idle-timeout-ms = 1500\n")
    env = {"RUMOR_MAX_UPLOAD_BYTES_IN_FLIGHT": "1048576"}
    flags = {"max_upload_bytes_per_connection": 4096, "upload_timeout_ms": 60_000}
    budget = Config.load(flags, env=env, config_file=toml).upload_budget()
    assert (budget.capacity, budget.per_connection) == (1048576, 4096)
    assert (budget.idle_timeout_s, budget.total_timeout_s) == (1.5, 60.0)
    assert budget.admission_timeout_s == 5.0  # the default
    defaults = Config.load({}, env={}).upload_budget()
    assert (defaults.capacity, defaults.idle_timeout_s) == (256 * 1024 * 1024, 30.0)


def test_bad_integer_in_environment() -> None:
    with pytest.raises(ConfigError, match="min_expiration_ttl must be an integer"):
        Config.load({}, env={"RUMOR_MIN_EXPIRATION_TTL": "soon"})


def test_unknown_toml_key(tmp_path: Path) -> None:
    toml = tmp_path / "rumor.toml"
    toml.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        Config.load({}, env={}, config_file=toml)


def test_invalid_toml(tmp_path: Path) -> None:
    toml = tmp_path / "rumor.toml"
    toml.write_text("listen = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        Config.load({}, env={}, config_file=toml)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        Config.load({}, env={}, config_file=tmp_path / "absent.toml")


def test_every_problem_is_reported_on_its_own_line() -> None:
    with pytest.raises(ConfigError) as failure:
        Config.load({"listen": "nowhere", "fanout": 0, "durability": "often"}, env={})
    lines = str(failure.value).splitlines()
    assert len(lines) == 3
    assert any(line.startswith("listen must be HOST:PORT") for line in lines)
    assert "fanout must be at least 1" in lines


def test_protocol_knobs_come_from_every_source_over_the_profile(tmp_path: Path) -> None:
    toml = tmp_path / "rumor.toml"
    toml.write_text('protocol-profile = "local"\ngc-grace-ms = 1234\nfanout = 2\n')
    env = {"RUMOR_PROBE_TIMEOUT_MS": "77", "RUMOR_FANOUT": "3"}
    config = Config.load({"lazy_fanout": 1, "fanout": None}, env=env, config_file=toml)
    protocol = config.protocol()
    assert (protocol.gc_grace_ms, protocol.probe_timeout_ms) == (1234, 77)
    assert (protocol.fanout, protocol.lazy_fanout) == (3, 1)
    local = ProtocolConfig.local()
    assert protocol.probe_interval_ms == local.probe_interval_ms  # not given: the profile's
    assert protocol.suspicion_timeout_ms == local.suspicion_timeout_ms


def test_node_shaped_knobs_reach_the_protocol() -> None:
    assert Config.load({}, env={}).protocol() == ProtocolConfig.lan().replace(
        snapshot_bootstrap=True
    )
    config = Config.load({"clock_offset_policy": "warn", "no_snapshot_bootstrap": True}, env={})
    assert not config.protocol().fence_clock
    assert not config.protocol().snapshot_bootstrap


def test_every_protocol_setting_is_a_setting_with_the_knobs_reason() -> None:
    settings = {setting.name: setting for setting in Config.settings()}
    lan = ProtocolConfig.lan()
    for knob in ProtocolConfig.node_settings():
        setting = settings[knob.name]
        assert setting.protocol
        assert setting.help == knob.metadata["reason"]
        assert setting.default == getattr(lan, knob.name)


def test_a_protocol_knob_out_of_bounds_is_named_once() -> None:
    with pytest.raises(ConfigError) as failure:
        Config.load({"suspicion_timeout_ms": 0}, env={"RUMOR_PROBE_INTERVAL_MS": "0"})
    assert str(failure.value).splitlines() == [
        "probe_interval_ms must be at least 1",
        "suspicion_timeout_ms must be at least 1",
    ]
