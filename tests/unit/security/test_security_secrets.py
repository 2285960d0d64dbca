"""Secrets: environment first, then mounted files; unsafe files refused;
every value registered for redaction; errors never carry a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from phalanx.core.errors import PhalanxError
from phalanx.security.redaction import MASK, Redactor
from phalanx.security.secrets import SecretError, SecretStore

VALUE = "v3ry-s3cret-value"


def write_secret(path: Path, content: str, mode: int = 0o600) -> Path:
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    return directory


def store(
    environ: dict[str, str], directory: Path | None, redactor: Redactor | None = None
) -> SecretStore:
    return SecretStore(environ, directory, redactor or Redactor())


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("api-token", "PHALANX_SECRET_API_TOKEN"),
        ("db.password", "PHALANX_SECRET_DB_PASSWORD"),
        ("KEY", "PHALANX_SECRET_KEY"),
        ("a_b", "PHALANX_SECRET_A_B"),
    ],
)
def test_env_variable_name_is_upper_cased_with_non_alnum_as_underscore(
    name: str, variable: str
) -> None:
    assert SecretStore.env_name(name) == variable
    assert store({variable: VALUE}, None).get(name) == VALUE


def test_environment_takes_precedence_over_files(secrets_dir: Path) -> None:
    write_secret(secrets_dir / "api-token", "from-file-value")
    environ = {"PHALANX_SECRET_API_TOKEN": "from-env-value"}
    assert store(environ, secrets_dir).get("api-token") == "from-env-value"
    assert store({}, secrets_dir).get("api-token") == "from-file-value"


@pytest.mark.parametrize("file_name", ["api-token", "API_TOKEN", "api_token"])
def test_file_is_found_by_exact_and_normalised_names(secrets_dir: Path, file_name: str) -> None:
    write_secret(secrets_dir / file_name, VALUE)
    assert store({}, secrets_dir).get("api-token") == VALUE


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (f"{VALUE}\n", VALUE),
        (f"{VALUE}\r\n", VALUE),
        (f"{VALUE}\n\n", f"{VALUE}\n"),
        (VALUE, VALUE),
        (f" {VALUE} ", f" {VALUE} "),
        ("pässwörd-ü\n", "pässwörd-ü"),
    ],
)
def test_one_trailing_newline_is_stripped(secrets_dir: Path, content: str, expected: str) -> None:
    write_secret(secrets_dir / "s", content)
    assert store({}, secrets_dir).get("s") == expected


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_files_are_accepted(secrets_dir: Path, mode: int) -> None:
    write_secret(secrets_dir / "s", VALUE, mode)
    assert store({}, secrets_dir).get("s") == VALUE


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o444])
def test_group_or_world_accessible_files_are_refused(secrets_dir: Path, mode: int) -> None:
    write_secret(secrets_dir / "s", VALUE, mode)
    with pytest.raises(SecretError, match=f"mode {mode:04o}") as info:
        store({}, secrets_dir).get("s")
    assert VALUE not in str(info.value)
    assert "chmod 600" in str(info.value)


def test_kubernetes_style_symlinks_inside_the_directory_are_followed(secrets_dir: Path) -> None:
    data = secrets_dir / "..2024_01_01_00_00_00.000000000"
    data.mkdir()
    write_secret(data / "api-token", VALUE)
    (secrets_dir / "..data").symlink_to(data.name)
    (secrets_dir / "api-token").symlink_to("..data/api-token")
    assert store({}, secrets_dir).get("api-token") == VALUE


def test_symlink_pointing_outside_the_directory_is_refused(
    tmp_path: Path, secrets_dir: Path
) -> None:
    outside = write_secret(tmp_path / "elsewhere", VALUE)
    (secrets_dir / "api-token").symlink_to(outside)
    with pytest.raises(SecretError, match="outside") as info:
        store({}, secrets_dir).get("api-token")
    assert VALUE not in str(info.value)


def test_relative_symlink_escaping_the_directory_is_refused(
    tmp_path: Path, secrets_dir: Path
) -> None:
    write_secret(tmp_path / "elsewhere", VALUE)
    (secrets_dir / "s").symlink_to("../elsewhere")
    with pytest.raises(SecretError, match="outside"):
        store({}, secrets_dir).get("s")


def test_dangling_symlink_is_an_error_not_a_skip(secrets_dir: Path) -> None:
    (secrets_dir / "s").symlink_to("missing-target")
    with pytest.raises(SecretError, match="cannot resolve"):
        store({}, secrets_dir).get("s")


def test_a_directory_is_not_a_secret_file(secrets_dir: Path) -> None:
    (secrets_dir / "s").mkdir(mode=0o700)
    with pytest.raises(SecretError, match="not a regular file"):
        store({}, secrets_dir).get("s")


def test_oversized_and_binary_files_are_refused(secrets_dir: Path) -> None:
    write_secret(secrets_dir / "big", "x" * (64 * 1024 + 1))
    with pytest.raises(SecretError, match="larger than"):
        store({}, secrets_dir).get("big")
    binary = secrets_dir / "bin"
    binary.write_bytes(b"\xff\xfe\x00secret")
    binary.chmod(0o600)
    with pytest.raises(SecretError, match="not UTF-8"):
        store({}, secrets_dir).get("bin")


def test_empty_values_are_errors(secrets_dir: Path) -> None:
    with pytest.raises(SecretError, match="is empty"):
        store({"PHALANX_SECRET_S": ""}, secrets_dir).get("s")
    write_secret(secrets_dir / "t", "\n")
    with pytest.raises(SecretError, match="is empty"):
        store({}, secrets_dir).get("t")


def test_missing_secret_names_where_it_looked_and_no_value(secrets_dir: Path) -> None:
    write_secret(secrets_dir / "other", VALUE)
    environ = {"PHALANX_SECRET_OTHER": VALUE}
    with pytest.raises(SecretError) as info:
        store(environ, secrets_dir).get("api-token")
    message = str(info.value)
    assert "PHALANX_SECRET_API_TOKEN" in message
    assert str(secrets_dir / "api-token") in message
    assert str(secrets_dir / "API_TOKEN") in message
    assert VALUE not in message


def test_missing_secret_without_directory_says_so() -> None:
    with pytest.raises(SecretError, match="no secrets directory") as info:
        store({}, None).get("api-token")
    assert "PHALANX_SECRET_API_TOKEN" in str(info.value)


def test_missing_secrets_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="none of these files exists"):
        store({}, tmp_path / "absent").get("s")


@pytest.mark.parametrize(
    "name", ["", "../etc/passwd", "a/b", ".hidden", "-x", "..data", "a\x00b", "ä"]
)
def test_invalid_names_are_refused_before_any_lookup(secrets_dir: Path, name: str) -> None:
    with pytest.raises(SecretError, match="invalid secret name"):
        store({}, secrets_dir).get(name)


def test_secret_error_is_a_user_facing_error_with_exit_code_2() -> None:
    assert issubclass(SecretError, PhalanxError)
    assert SecretError.exit_code == 2


def test_values_returned_are_registered_with_the_redactor(secrets_dir: Path) -> None:
    redactor = Redactor()
    write_secret(secrets_dir / "file-secret", "file-secret-value\n")
    secrets = store({"PHALANX_SECRET_ENV": "env-secret-value"}, secrets_dir, redactor)
    secrets.get("env")
    secrets.get("file-secret")
    text = "got env-secret-value and file-secret-value"
    assert redactor.redact_text(text) == f"got {MASK} and {MASK}"


@pytest.mark.parametrize("value", ["123", "   "])
def test_a_secret_too_short_to_mask_is_refused(value: str) -> None:
    store = SecretStore({"PHALANX_SECRET_PIN": value}, None, Redactor())
    with pytest.raises(SecretError, match="too short to be masked"):
        store.get("pin")
