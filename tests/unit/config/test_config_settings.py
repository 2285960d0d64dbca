"""Settings: precedence defaults < file < env < flags, and validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from phalanx.config.durations import format_duration, parse_duration
from phalanx.config.settings import OPTIONS, Settings, build_settings, read_config_file
from phalanx.core.errors import ConfigError


def build(cli: dict[str, object] | None = None, env: dict[str, str] | None = None,
          config: str | None = None) -> Settings:
    settings, _ = build_settings(cli=cli or {}, environ=env or {}, config_file=config)
    return settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("30s", 30.0), ("2m", 120.0), ("1h30m", 5400.0), ("500ms", 0.5),
     ("1.5s", 1.5), ("1d", 86400.0), (" 2M ", 120.0)],
)
def test_durations_parse_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5x", "m5", "1h 30m", "nan", "inf", "s"])
def test_durations_reject_garbage(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked elsewhere
        parse_duration(text)


def test_duration_formatting_is_compact() -> None:
    assert format_duration(4.5) == "4.5s"
    assert format_duration(30) == "30s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3723) == "1h02m03s"


def test_defaults_are_safe_and_small() -> None:
    settings = build()
    assert settings.users == 1
    assert settings.spawn_rate == 1.0
    assert settings.run_time is None
    assert settings.max_fail_ratio == 0.0


def test_precedence_is_defaults_then_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "phalanx.toml"
    config.write_text('users = 5\nspawn-rate = 2\nrun_time = "1m"\nhost = "http://file:1"\n')
    settings = build(
        cli={"users": "7"},
        env={"PHALANX_USERS": "6", "PHALANX_SPAWN_RATE": "3"},
        config=str(config),
    )
    assert settings.users == 7  # flag beats env and file
    assert settings.spawn_rate == 3.0  # env beats file
    assert settings.run_time == 60.0  # file beats default
    assert settings.host == "http://file:1"
    assert settings.stop_timeout == 0.0  # default


def test_config_file_path_can_come_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[phalanx]\nusers = 4\n")
    assert build(env={"PHALANX_CONFIG": str(config)}).users == 4


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"users": "-5"}, "--users: must be at least 1, got -5"),
        ({"users": "many"}, "--users: expected an integer"),
        ({"spawn_rate": "0"}, "--spawn-rate: must be greater than 0"),
        ({"spawn_rate": "nan"}, "--spawn-rate: expected a finite number"),
        ({"host": "ftp://x"}, "--host: 'ftp://x' must be an http:// or https:// URL"),
        ({"host": "http://"}, "has no host name"),
        ({"host": "http://user:pw@example.test"}, "in the host URL are refused"),
        ({"host": "http://h:99999"}, "invalid port"),
        ({"run_time": "forever"}, "--run-time: 'forever' is not a duration"),
        ({"max_fail_ratio": "2"}, "--max-fail-ratio: must be at most 1"),
        ({"live": "sometimes"}, "--live: must be one of auto, on, off"),
        ({"users": "200", "max_users": "100"}, "above the limit --max-users 100"),
        ({"spawn_rate": "50", "max_spawn_rate": "10"}, "above the limit --max-spawn-rate 10"),
        ({"tags": "a,b", "exclude_tags": "b"}, "both included and excluded: b"),
    ],
)
def test_invalid_flags_give_clear_messages(cli: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(cli=cli)
    assert message in str(info.value)


def test_invalid_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="PHALANX_USERS: expected an integer"):
        build(env={"PHALANX_USERS": "lots"})


def test_unknown_env_variables_warn_but_secrets_are_not_settings() -> None:
    _, warnings = build_settings(
        cli={}, environ={"PHALANX_USRES": "3", "PHALANX_SECRET_TOKEN": "x", "HOME": "/"}
    )
    assert warnings == ["ignoring unknown environment variable PHALANX_USRES"]


def test_the_build_variable_is_not_a_setting_and_not_warned_about() -> None:
    settings, warnings = build_settings(cli={}, environ={"PHALANX_COMPILE": "1"})
    assert warnings == []
    assert settings == build_settings(cli={}, environ={})[0]


def test_unknown_config_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("spawn_rte = 3\n")
    expected = "unknown setting 'spawn_rte' \\(did you mean 'spawn_rate'"
    with pytest.raises(ConfigError, match=expected):
        read_config_file(config)


def test_broken_and_missing_config_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("users = = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        build(config=str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        build(config=str(tmp_path / "missing.toml"))
    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text("users = true\n")
    with pytest.raises(ConfigError, match="users: expected an integer"):
        build(config=str(wrong_type))


def test_lists_accept_commas_and_toml_arrays(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('tags = ["a", "b"]\n')
    assert build(config=str(config)).tags == ("a", "b")
    assert build(cli={"tags": "x, y,,"}).tags == ("x", "y")


def test_every_option_has_help_and_a_settings_field() -> None:
    fields = set(Settings.__dataclass_fields__)
    for option in OPTIONS:
        assert option.help
        assert option.name in fields
        assert option.positional or option.flags


def test_settings_are_immutable() -> None:
    settings = build()
    with pytest.raises(AttributeError):
        settings.users = 3  # type: ignore[misc]
    assert settings.with_overrides(users=3).users == 3
    assert settings.users == 1


@pytest.mark.parametrize("value", ["0", "0s", 0])
def test_zero_run_time_is_refused_everywhere(value: object) -> None:
    with pytest.raises(ConfigError, match="must be a positive duration"):
        build(cli={"run_time": value})


def test_empty_run_time_means_until_stopped() -> None:
    assert build(cli={"run_time": "none"}).run_time is None


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", 512 << 20), ("512M", 512 << 20), ("2G", 2 << 30), ("1500MB", 1500 * 10**6),
     ("1GiB", 1 << 30), ("none", None)],
)
def test_memory_sizes_parse(text: str, size: int | None) -> None:
    assert build(cli={"max_memory": text}).max_memory == size


@pytest.mark.parametrize("text", ["lots", "5T", "1", "-3G"])
def test_bad_memory_sizes_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--max-memory"):
        build(cli={"max_memory": text})


@pytest.mark.parametrize("host", ["admin:hunter2@example.test", "http://admin:hunter2@h.test"])
def test_credentials_in_the_host_are_refused_without_echoing_them(host: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(cli={"host": host})
    assert "credentials" in str(info.value)
    assert "hunter2" not in str(info.value)
