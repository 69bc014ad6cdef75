"""ProtocolConfig: one declaration per knob (default, reason, bounds), profiles, validate()."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.node.replication.engine.protocol_config import ProtocolConfig, ProtocolConfigError

BOUNDED = [knob for knob in ProtocolConfig.knobs() if knob.metadata["minimum"] is not None]


@pytest.mark.parametrize("profile", ["lan", "local", "wan"])
def test_every_profile_is_valid(profile: str) -> None:
    config = ProtocolConfig.profile(profile)
    assert config.problems() == []
    assert config.validate() is config


def test_every_knob_has_a_one_line_reason() -> None:
    for knob in ProtocolConfig.knobs():
        reason = knob.metadata["reason"]
        assert reason and "\n" not in reason, knob.name
        assert reason.endswith("."), knob.name


def test_every_numeric_knob_has_a_lower_bound() -> None:
    for knob in ProtocolConfig.knobs():
        if knob.type in ("int", "float"):
            assert knob.metadata["minimum"] is not None, knob.name


@given(st.sampled_from(BOUNDED), st.integers(min_value=1, max_value=10**6))
def test_a_knob_below_its_minimum_is_named(knob: dataclasses.Field[Any], below: int) -> None:
    name, minimum = knob.name, knob.metadata["minimum"]
    config = ProtocolConfig.lan().replace(**{name: minimum - below})
    assert config.problems() == [f"{name} must be at least {minimum}"]
    with pytest.raises(ProtocolConfigError, match=f"^{name} must be at least"):
        config.validate()


def test_every_problem_is_reported_on_its_own_line() -> None:
    config = ProtocolConfig.local().replace(fanout=0, probe_interval_ms=-1, reconnect_share=1.5)
    with pytest.raises(ProtocolConfigError) as failure:
        config.validate()
    assert str(failure.value).splitlines() == [
        "fanout must be at least 1",
        "probe_interval_ms must be at least 1",
        "reconnect_share must be at most 1.0",
    ]


def test_the_node_settings_are_the_knobs_rumor_node_has_always_offered() -> None:
    assert {knob.name for knob in ProtocolConfig.node_settings()} == {
        "gossip_interval_ms", "fanout", "lazy_fanout", "anti_entropy_interval_ms",
        "probe_interval_ms", "probe_timeout_ms", "indirect_probes", "suspicion_timeout_ms",
        "member_timeout_ms", "unconfirmed_member_timeout_ms", "join_timeout_ms",
        "seed_contact_interval_ms",
        "snapshot_min_records", "audit_interval_ms", "gc_grace_ms", "sweep_interval_ms",
        "max_clock_offset_ms", "min_replicas_timeout_ms",
    }  # fmt: skip


def test_suspicion_grows_with_the_cluster_from_its_floor() -> None:
    config = ProtocolConfig.lan()
    assert config.suspicion_ms(1) == config.suspicion_timeout_ms
    assert config.suspicion_ms(1000) == 4 * 3 * config.probe_interval_ms
