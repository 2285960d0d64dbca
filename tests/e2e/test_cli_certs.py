"""``phalanx certs dev``: a self-signed pair with the right names, modes and extensions, that
really serves TLS; every user error is one ConfigError line and leaves the directory alone.

Most tests build the ``certs`` parser on a bare argparse parser and call its handler in
process (fast, and independent of the command's registration in ``phalanx.cli.main``); one
test runs the real ``python -m phalanx certs dev``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from tests.e2e.conftest import run_phalanx

from phalanx.cli import certs
from phalanx.core.errors import ConfigError

OPENSSL = shutil.which("openssl")
# CI must have openssl (Debian's base image does): a missing one fails there, not skips.
needs_openssl = pytest.mark.skipif(OPENSSL is None and os.environ.get("CI") != "true",
                                   reason="the 'openssl' command is not installed")
HANDSHAKE_TIMEOUT_S = 10.0


def dev(*argv: str) -> int:
    """Parse ``certs dev ARGV`` with the module's own parser and run its handler."""
    parser = argparse.ArgumentParser()
    certs.add_parser(parser.add_subparsers())
    args = parser.parse_args(["certs", "dev", *argv])
    code: int = args.handler(args)
    return code


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def openssl(*args: str) -> str:
    assert OPENSSL is not None
    result = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def cert_text(path: Path) -> str:
    return openssl("x509", "-in", str(path), "-noout", "-text")


def subject_alt_names(path: Path) -> list[str]:
    lines = cert_text(path).splitlines()
    at = next(i for i, line in enumerate(lines) if "Subject Alternative Name" in line)
    return [entry.strip() for entry in lines[at + 1].split(",")]


def fake_openssl(tmp_path: Path, script: str) -> Path:
    """A directory holding an ``openssl`` shell script (put it first on PATH)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    tool = bin_dir / "openssl"
    tool.write_text(f"#!/bin/sh\n{script}\n", encoding="ascii")
    tool.chmod(0o755)
    return bin_dir


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tempfile``'s directory for this test only, to see what the command leaves there."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


@needs_openssl
def test_dev_writes_a_0600_key_and_a_0644_cert_whatever_the_umask(
        tmp_path: Path, private_tmp: Path) -> None:
    old = os.umask(0)
    try:
        assert dev("--dir", str(tmp_path / "certs")) == 0
    finally:
        os.umask(old)
    cert, key = tmp_path / "certs" / "dev-cert.pem", tmp_path / "certs" / "dev-key.pem"
    assert mode(cert) == 0o644
    assert mode(key) == 0o600
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY-----" in key.read_text()
    assert list(private_tmp.iterdir()) == []  # the working directory is gone
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == ["dev-cert.pem",
                                                                      "dev-key.pem"]


@needs_openssl
def test_dev_prints_paths_fingerprint_exact_flags_and_an_untrusted_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dev("--dir", str(tmp_path)) == 0
    out, err = capsys.readouterr()
    cert, key = (tmp_path / "dev-cert.pem").resolve(), (tmp_path / "dev-key.pem").resolve()
    fingerprint = openssl("x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256")
    assert fingerprint.strip().split("=", 1)[1] in out
    assert f"  --tls-cert {cert} --tls-key {key}\n" in out
    assert str(cert) in out
    assert str(key) in out
    assert "warning" in err
    assert "NOT trust" in err
    assert "development only" in err


@needs_openssl
def test_dev_certificate_names_loopback_and_every_extra_name(tmp_path: Path) -> None:
    assert dev("--dir", str(tmp_path), "--name", "Dev.Example.TEST", "--name", "10.1.2.3",
               "--name", "2001:db8::1", "--name", "localhost") == 0
    assert subject_alt_names(tmp_path / "dev-cert.pem") == [
        "DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1",
        "DNS:dev.example.test", "IP Address:10.1.2.3", "IP Address:2001:DB8:0:0:0:0:0:1",
    ]


@needs_openssl
def test_dev_certificate_is_an_ecdsa_p256_server_leaf_valid_for_the_given_days(
        tmp_path: Path) -> None:
    assert dev("--dir", str(tmp_path), "--days", "7") == 0
    text = cert_text(tmp_path / "dev-cert.pem")
    assert "id-ecPublicKey" in text
    assert "P-256" in text
    assert "ecdsa-with-SHA256" in text
    basic = text.split("X509v3 Basic Constraints: critical", 1)[1].split("\n", 2)[1]
    assert basic.strip() == "CA:FALSE"
    assert "X509v3 Key Usage: critical" in text
    assert "TLS Web Server Authentication" in text
    openssl("x509", "-in", str(tmp_path / "dev-cert.pem"), "-noout", "-checkend",
            str(6 * 86400))  # still valid in 6 days
    result = subprocess.run([str(OPENSSL), "x509", "-in", str(tmp_path / "dev-cert.pem"),
                             "-noout", "-checkend", str(8 * 86400)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1  # expired in 8 days


@needs_openssl
def test_dev_key_belongs_to_the_certificate(tmp_path: Path) -> None:
    assert dev("--dir", str(tmp_path)) == 0
    from_key = openssl("pkey", "-in", str(tmp_path / "dev-key.pem"), "-pubout")
    from_cert = openssl("x509", "-in", str(tmp_path / "dev-cert.pem"), "-noout", "-pubkey")
    assert from_key == from_cert
    assert "PUBLIC KEY" in from_key


@needs_openssl
@pytest.mark.parametrize("existing", ["dev-key.pem", "dev-cert.pem"])
def test_dev_refuses_to_overwrite_either_file_without_force(tmp_path: Path,
                                                            existing: str) -> None:
    (tmp_path / existing).write_text("keep me\n")
    with pytest.raises(ConfigError, match="already exists; give --force") as caught:
        dev("--dir", str(tmp_path))
    assert "\n" not in str(caught.value)
    assert (tmp_path / existing).read_text() == "keep me\n"
    assert [p.name for p in tmp_path.iterdir()] == [existing]


@needs_openssl
def test_dev_force_replaces_the_pair_with_a_new_one(tmp_path: Path) -> None:
    assert dev("--dir", str(tmp_path)) == 0
    old_cert = (tmp_path / "dev-cert.pem").read_bytes()
    old_key = (tmp_path / "dev-key.pem").read_bytes()
    with pytest.raises(ConfigError):
        dev("--dir", str(tmp_path))
    assert (tmp_path / "dev-key.pem").read_bytes() == old_key
    (tmp_path / "dev-key.pem").chmod(0o644)  # --force also restores the private mode
    assert dev("--dir", str(tmp_path), "--force") == 0
    assert (tmp_path / "dev-cert.pem").read_bytes() != old_cert
    assert (tmp_path / "dev-key.pem").read_bytes() != old_key
    assert mode(tmp_path / "dev-key.pem") == 0o600
    assert mode(tmp_path / "dev-cert.pem") == 0o644


@pytest.mark.parametrize("name", [
    "", "bad_name.test", "-lead.test", "trail-.test", "a..b", "dot.", "1.2.3.4.5", "999.1.1.1",
    "x" * 64 + ".test", ("a" * 60 + ".") * 5 + "test", "fe80::1%eth0", "host,DNS:evil.test",
    "host\nevil", "*.test", "a.*.test", "h\u00e9.test", "http://x.test",
])
def test_dev_rejects_a_bad_name_before_writing_anything(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="--name") as caught:
        dev("--dir", str(tmp_path / "certs"), f"--name={name}")
    assert "\n" not in str(caught.value).replace(repr(name), "")
    assert not (tmp_path / "certs").exists()


@pytest.mark.parametrize(("name", "normal"), [
    ("Example.TEST", "example.test"), ("*.dev.test", "*.dev.test"), ("10.0.0.1", "10.0.0.1"),
    ("2001:DB8:0::1", "2001:db8::1"), ("xn--bcher-kva.test", "xn--bcher-kva.test"),
    ("single", "single"), ("a" * 63 + ".test", "a" * 63 + ".test"),
])
def test_parse_name_accepts_dns_names_and_ip_literals_normalized(name: str, normal: str) -> None:
    assert certs.parse_name(name) == normal


@pytest.mark.parametrize("days", ["0", "398", "-1", "abc", "1.5", "", "\u0663"])
def test_dev_rejects_bad_days_before_writing_anything(tmp_path: Path, days: str) -> None:
    with pytest.raises(ConfigError, match=r"--days must be a whole number from 1 to 397"):
        dev("--dir", str(tmp_path / "certs"), f"--days={days}")
    assert not (tmp_path / "certs").exists()


@needs_openssl
def test_dev_accepts_the_maximum_of_397_days(tmp_path: Path) -> None:
    assert dev("--dir", str(tmp_path), "--days", "397") == 0


@needs_openssl
def test_dev_reports_a_directory_that_is_a_file_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot create the directory") as caught:
        dev("--dir", str(blocker))
    assert "\n" not in str(caught.value)


@needs_openssl
@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_dev_reports_an_unwritable_directory_in_one_line(tmp_path: Path,
                                                          private_tmp: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError, match="cannot write") as caught:
            dev("--dir", str(locked))
    finally:
        locked.chmod(0o700)
    assert "\n" not in str(caught.value)
    assert list(locked.iterdir()) == []
    assert list(private_tmp.iterdir()) == []


@needs_openssl
def test_dev_reports_a_file_it_cannot_replace_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "dev-key.pem").mkdir()  # even --force cannot put a file over a directory
    with pytest.raises(ConfigError, match="cannot write") as caught:
        dev("--dir", str(tmp_path), "--force")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "dev-cert.pem").exists()


def test_dev_without_openssl_names_the_package_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ConfigError, match="install the package 'openssl'") as caught:
        dev("--dir", str(tmp_path / "certs"))
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "certs").exists()


def test_dev_reports_a_failing_openssl_in_one_line_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_tmp: Path) -> None:
    bin_dir = fake_openssl(tmp_path, 'echo "first line" >&2\necho "no entropy today" >&2\n'
                                     "exit 1")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ConfigError, match=r"^openssl genpkey failed: no entropy today$"):
        dev("--dir", str(tmp_path / "certs"))
    assert list((tmp_path / "certs").iterdir()) == []
    assert list(private_tmp.iterdir()) == []


@needs_openssl
def test_dev_falls_back_to_rsa_2048_where_openssl_cannot_make_ec_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    bin_dir = fake_openssl(tmp_path, 'case " $* " in *" EC "*) echo "unsupported: EC" >&2; '
                                     f'exit 1;; esac\nexec "{OPENSSL}" "$@"')
    monkeypatch.setenv("PATH", str(bin_dir))
    assert dev("--dir", str(tmp_path / "certs")) == 0
    assert "RSA 2048" in capsys.readouterr().out
    monkeypatch.undo()
    text = cert_text(tmp_path / "certs" / "dev-cert.pem")
    assert "rsaEncryption" in text
    assert "(2048 bit)" in text
    assert "Key Encipherment" in text
    assert mode(tmp_path / "certs" / "dev-key.pem") == 0o600


async def handshake(port: int, context: ssl.SSLContext, server_hostname: str) -> None:
    """Connect over TLS to 127.0.0.1:port and read to the end; raises if the handshake fails."""
    async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=server_hostname)
        try:
            assert await reader.read() == b"hello over tls\n"
        finally:
            writer.close()
            await writer.wait_closed()


async def handshake_fails(port: int, context: ssl.SSLContext, server_hostname: str) -> str:
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await handshake(port, context, server_hostname)
    return str(caught.value)


@needs_openssl
async def test_dev_pair_serves_tls_that_verifies_only_when_the_cert_is_trusted(
        tmp_path: Path) -> None:
    assert dev("--dir", str(tmp_path), "--name", "dev.example.test") == 0
    cert, key = tmp_path / "dev-cert.pem", tmp_path / "dev-key.pem"
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.minimum_version = ssl.TLSVersion.TLSv1_2
    server_context.load_cert_chain(cert, key)

    async def greet(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"hello over tls\n")
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=server_context,
                                        ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S)
    async with server:
        port = server.sockets[0].getsockname()[1]
        trusting = ssl.create_default_context(cafile=str(cert))
        for name in ("localhost", "127.0.0.1", "::1", "dev.example.test"):
            await handshake(port, trusting, name)
        assert "self-signed" in await handshake_fails(port, ssl.create_default_context(),
                                                      "localhost")
        assert "mismatch" in await handshake_fails(port, trusting, "other.example.test")


def test_python_m_phalanx_certs_dev_writes_the_pair_and_refuses_to_overwrite(
        tmp_path: Path) -> None:
    if OPENSSL is None and os.environ.get("CI") != "true":
        pytest.skip("the 'openssl' command is not installed")
    first = run_phalanx(["certs", "dev", "--dir", "tls", "--name", "box.test"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "--tls-cert " in first.stdout
    assert mode(tmp_path / "tls" / "dev-key.pem") == 0o600
    assert "DNS:box.test" in subject_alt_names(tmp_path / "tls" / "dev-cert.pem")
    again = run_phalanx(["certs", "dev", "--dir", "tls"], cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1, again.stderr
    assert again.stderr.startswith("phalanx: error: ")
    assert "--force" in again.stderr
