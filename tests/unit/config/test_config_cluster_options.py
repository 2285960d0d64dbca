"""The distributed-mode options: endpoints, switches, bounds, and their safe defaults."""

from __future__ import annotations

import pytest

from phalanx.config.settings import Settings, build_settings
from phalanx.core.errors import ConfigError


def build(**cli: object) -> Settings:
    settings, _ = build_settings(cli=cli, environ={})
    return settings


def test_the_master_binds_loopback_by_default_and_plaintext_is_off() -> None:
    settings = Settings()
    assert settings.bind == "tcp://127.0.0.1:5557"
    assert settings.insecure_plaintext is False
    assert settings.master_timeout <= 10.0


@pytest.mark.parametrize(("given", "endpoint"), [
    ("10.0.0.5:5557", "tcp://10.0.0.5:5557"),
    ("tcp://0.0.0.0:6000", "tcp://0.0.0.0:6000"),
    ("master.example.test:5557", "tcp://master.example.test:5557"),
    ("*:5557", "tcp://*:5557"),
    ("ipc:///run/phalanx/master.sock", "ipc:///run/phalanx/master.sock"),
])
def test_addresses_become_zeromq_endpoints(given: str, endpoint: str) -> None:
    assert build(bind=given).bind == endpoint
    assert build(master=given).master == endpoint


@pytest.mark.parametrize("given", [
    "nonsense", "host:", ":5557", "host:70000", "http://host:80", "ipc://",
    "ipc://@abstract", "tcp://host", "a b:1",
])
def test_bad_addresses_are_refused_with_the_flag_named(given: str) -> None:
    with pytest.raises(ConfigError, match="--bind"):
        build(bind=given)


@pytest.mark.parametrize(("raw", "value"), [
    ("true", True), ("1", True), ("yes", True), ("on", True),
    ("false", False), ("0", False), ("no", False), ("off", False), (True, True),
])
def test_switches_read_like_booleans(raw: object, value: bool) -> None:
    assert build(insecure_plaintext=raw).insecure_plaintext is value


def test_a_switch_with_a_garbage_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="PHALANX_INSECURE_PLAINTEXT"):
        build_settings(cli={}, environ={"PHALANX_INSECURE_PLAINTEXT": "maybe"})


@pytest.mark.parametrize(("name", "flag", "bad"), [
    ("master_timeout", "--master-timeout", "2s"),
    ("master_timeout", "--master-timeout", "61"),
    ("heartbeat_timeout", "--heartbeat-timeout", "1"),
    ("expect_workers", "--expect-workers", "0"),
    ("worker_name", "--name", "../w1"),
    ("worker_name", "--name", "-w"),
    ("report_interval", "--report-interval", "0.01"),
    ("processes", "--processes", "0"),
])
def test_cluster_bounds_are_enforced(name: str, flag: str, bad: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        build(**{name: bad})


def test_cluster_options_come_from_the_environment_too() -> None:
    settings, _ = build_settings(cli={}, environ={"PHALANX_MASTER": "127.0.0.1:7000",
                                                  "PHALANX_EXPECT_WORKERS": "3"})
    assert settings.master == "tcp://127.0.0.1:7000"
    assert settings.expect_workers == 3


def test_port_zero_picks_a_free_port_for_bind_but_is_refused_for_master() -> None:
    assert build(bind="127.0.0.1:0").bind == "tcp://127.0.0.1:0"
    with pytest.raises(ConfigError, match="--master"):
        build(master="127.0.0.1:0")
