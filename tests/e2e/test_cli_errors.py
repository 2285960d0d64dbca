"""Bad input to ``phalanx run`` gives one clear message and exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import phalanx

Cli = Callable[..., subprocess.CompletedProcess[str]]

GOOD = """
from phalanx import HttpUser, task

class Shopper(HttpUser):
    @task
    async def browse(self):
        await self.client.get("/")
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr


def test_version_prints_the_version_and_the_build(phalanx_cli: Cli) -> None:
    # scripts/test.sh runs this against the compiled build too, with PHALANX_EXPECT_COMPILED=1:
    # it shows that a CLI subprocess really runs the build under test.
    result = phalanx_cli("--version")
    assert result.returncode == 0
    build = "compiled" if os.environ.get("PHALANX_EXPECT_COMPILED") == "1" else "pure Python"
    assert result.stdout == f"phalanx {phalanx.__version__} ({build})\n"


def test_run_help_lists_options_by_section_and_exit_codes(phalanx_cli: Cli) -> None:
    result = phalanx_cli("run", "--help")
    assert result.returncode == 0
    for text in ("--users", "--spawn-rate", "--run-time", "--json", "--csv", "load:",
                 "exit codes", "PHALANX_"):
        assert text in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-u", "-5"], "--users: must be at least 1, got -5"),
        (["-r", "0"], "--spawn-rate: must be greater than 0"),
        (["--host", "ftp://x"], "--host: 'ftp://x' must be an http:// or https:// URL"),
        (["-t", "soon"], "--run-time: 'soon' is not a duration"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_flags_are_refused_with_a_clear_message(
    phalanx_cli: Cli, tmp_path: Path, args: list[str], message: str
) -> None:
    script = write(tmp_path, "s.py", GOOD)
    assert_clean_error(phalanx_cli("run", "-f", script, *args), message)


def test_bad_environment_value_names_the_variable(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "s.py", GOOD)
    result = phalanx_cli("run", "-f", script, env={"PHALANX_SPAWN_RATE": "-1"})
    assert_clean_error(result, "PHALANX_SPAWN_RATE: must be greater than 0")


def test_missing_script_flag_is_explained(phalanx_cli: Cli) -> None:
    assert_clean_error(phalanx_cli("run", "--host", "http://127.0.0.1:9"), "no script given")


def test_syntax_error_names_file_and_line(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "broken.py", "from phalanx import User\n\ndef oops(:\n    pass\n")
    assert_clean_error(phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9"),
                       "broken.py:3")


def test_import_error_names_file_and_line(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "imp.py", "import phalanx\nimport no_such_module_here\n")
    assert_clean_error(phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9"),
                       "imp.py:2", "no_such_module_here")


def test_sync_task_is_refused_with_its_name(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "sync.py", GOOD.replace("async def browse", "def browse")
                   .replace("await self.client", "self.client"))
    assert_clean_error(phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9"),
                       "sync.py", "browse", "async def")


def test_script_without_user_class_is_refused(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "empty.py", "x = 1\n")
    assert_clean_error(phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9"),
                       "empty.py")


def test_http_user_without_any_host_is_refused_before_any_load(
    phalanx_cli: Cli, tmp_path: Path
) -> None:
    script = write(tmp_path, "nohost.py", GOOD)
    assert_clean_error(phalanx_cli("run", "-f", script), "host")


def test_unknown_user_class_lists_the_available_ones(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "s.py", GOOD)
    assert_clean_error(
        phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9", "Nobody"),
        "Nobody", "Shopper",
    )


def test_unwritable_output_is_refused_before_the_run(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "s.py", GOOD)
    result = phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9",
                         "--json", str(tmp_path / "missing-dir" / "out.json"))
    assert_clean_error(result, "does not exist")


def test_unknown_config_key_is_refused(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "s.py", GOOD)
    config = write(tmp_path, "c.toml", "usres = 3\n")
    assert_clean_error(phalanx_cli("run", "-f", script, "--config", config),
                       "unknown setting 'usres'", "did you mean 'users'")


def test_two_user_classes_with_one_name_are_refused(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "dup.py", GOOD + "\nBase = Shopper\n\nclass Shopper(Base):\n"
                   "    pass\n")
    assert_clean_error(phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9"),
                       "two User classes are named Shopper")


def test_a_directory_as_json_output_is_refused(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "s.py", GOOD)
    result = phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9",
                         "--json", str(tmp_path))
    assert_clean_error(result, "is a directory")


def test_a_class_host_outside_the_allowed_targets_is_refused_before_any_load(
    phalanx_cli: Cli, tmp_path: Path
) -> None:
    script = write(tmp_path, "s.py", GOOD.replace("class Shopper(HttpUser):",
                                                   "class Shopper(HttpUser):\n"
                                                   "    host = 'http://127.0.0.2:9'"))
    result = phalanx_cli("run", "-f", script, "--allow-target", "127.0.0.1")
    assert_clean_error(result, "the host of Shopper", "outside the allowed targets")


def test_a_malformed_target_rule_is_refused(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = write(tmp_path, "s.py", GOOD)
    result = phalanx_cli("run", "-f", script, "--host", "http://127.0.0.1:9",
                         "--allow-target", "*.com")
    assert_clean_error(result, "--allow-target")


def test_credentials_in_a_class_host_are_refused_without_echoing_them(
    phalanx_cli: Cli, tmp_path: Path
) -> None:
    script = write(tmp_path, "s.py", GOOD.replace(
        "class Shopper(HttpUser):",
        "class Shopper(HttpUser):\n    host = 'http://admin:hunter2pass@127.0.0.1:9'"))
    result = phalanx_cli("run", "-f", script)
    assert_clean_error(result, "credentials (user:password@) in the host are refused")
    assert "hunter2pass" not in result.stderr + result.stdout


def test_a_ca_file_that_is_not_pem_is_refused_before_any_load(
    phalanx_cli: Cli, tmp_path: Path
) -> None:
    script = write(tmp_path, "s.py", GOOD)
    bad_ca = write(tmp_path, "ca.pem", "not a certificate\n")
    result = phalanx_cli("run", "-f", script, "--host", "https://127.0.0.1:9",
                         "--ca-file", bad_ca)
    assert_clean_error(result, "cannot load TLS ca_file")
