"""``phalanx certs dev``: a self-signed TLS certificate and key for serving the web UI locally.

``phalanx certs dev [--dir DIR] [--name NAME ...] [--days N] [--force]`` writes

- ``DIR/dev-cert.pem`` (mode 0644): a self-signed X.509 v3 certificate whose
  subjectAltName holds ``localhost``, ``127.0.0.1``, ``::1`` and every
  ``--name`` (a DNS name or an IP literal), with ``basicConstraints
  CA:FALSE``, ``keyUsage digitalSignature`` and ``extendedKeyUsage
  serverAuth``, valid ``--days`` days (default 30, at most 397: the longest
  server certificate browsers accept);
- ``DIR/dev-key.pem`` (mode 0600): its private key, ECDSA P-256 (RSA 2048
  where the local OpenSSL cannot make EC keys),

then prints the paths, the certificate's SHA-256 fingerprint and the exact
``--tls-cert/--tls-key`` flags, and warns on stderr that no browser trusts it.

Why the ``openssl`` command and not a Python library: phalanx takes no
dependency for a development convenience, and Debian ships ``openssl``.
It runs without a shell, with argument lists and a timeout, reading a
configuration file this module writes (so the system ``openssl.cnf`` adds no
extension of its own); every name put into that file is validated first, so
no input can add a line to it.

Invariants
----------
- Nothing in ``DIR`` changes unless the whole pair was made and loads in
  Python's ``ssl`` (the server's loader): openssl works in a private
  temporary directory (``tempfile.mkdtemp``, mode 0700) removed afterwards.
- Each file is written atomically with its exact mode, whatever the umask:
  the key first, then the certificate.
- Without ``--force`` an existing ``dev-key.pem`` or ``dev-cert.pem`` is never
  replaced.
- Every user error (bad ``--name`` or ``--days``, existing files, unwritable
  ``DIR``, missing or failing ``openssl``) is one line, raised as
  :class:`~phalanx.core.errors.ConfigError` (exit code 2).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from phalanx.core.errors import ConfigError
from phalanx.transport.keyfiles import PUBLIC_MODE, SECRET_MODE, write_atomic

CERT_FILE: Final = "dev-cert.pem"
KEY_FILE: Final = "dev-key.pem"
DEFAULT_NAMES: Final = ("localhost", "127.0.0.1", "::1")
DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 397
MAX_NAMES: Final = 100
OPENSSL_TIMEOUT_S: Final = 60.0
MAX_PEM_BYTES: Final = 64 * 1024
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

EPILOG = """\
files (in --dir, default: the current directory):
  dev-cert.pem   the certificate (0644), self-signed: no browser trusts it
  dev-key.pem    its private key (0600): keep it private

example:
  phalanx certs dev --dir certs/ --name myhost.local
  phalanx run script.py --web --tls-cert certs/dev-cert.pem --tls-key certs/dev-key.pem

For anything but local development use a certificate from a real CA.
"""


@dataclass(frozen=True, slots=True)
class KeyKind:
    """How openssl makes one kind of key, and the keyUsage its certificate gets."""

    label: str
    genpkey_args: tuple[str, ...]
    key_usage: str


ECDSA_P256: Final = KeyKind("ECDSA P-256", ("-algorithm", "EC", "-pkeyopt",
                                            "ec_paramgen_curve:P-256"), "digitalSignature")
RSA_2048: Final = KeyKind("RSA 2048", ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
                          "digitalSignature, keyEncipherment")


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "certs",
        help="create TLS certificates for the web UI (self-signed, for development)",
        description="Create TLS certificates for serving the web UI over HTTPS.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    actions = parser.add_subparsers(dest="certs_action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    dev: argparse.ArgumentParser = actions.add_parser(
        "dev", help="write a self-signed certificate and key for local development",
        description="Write DIR/dev-cert.pem and DIR/dev-key.pem: a self-signed certificate "
                    "for localhost, 127.0.0.1, ::1 and every --name. Development only: "
                    "browsers do not trust it.",
        allow_abbrev=False)
    dev.add_argument("--dir", type=Path, default=Path("."), metavar="DIR",
                     help="where to write the pair (created if missing; default: .)")
    dev.add_argument("--name", action="append", default=[], metavar="NAME",
                     help="another DNS name or IP address the certificate is valid for "
                          "(repeatable)")
    dev.add_argument("--days", default=str(DEFAULT_DAYS), metavar="N",
                     help=f"validity in days, 1 to {MAX_DAYS} (default {DEFAULT_DAYS})")
    dev.add_argument("--force", action="store_true", help="replace an existing pair")
    dev.set_defaults(handler=_dev)


def parse_days(text: str) -> int:
    """``--days`` as an int from 1 to :data:`MAX_DAYS`; ``ConfigError`` otherwise."""
    value = text.strip()
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        raise ConfigError(f"--days must be a whole number from 1 to {MAX_DAYS} (browsers refuse "
                          f"longer-lived server certificates), got {text!r}")
    return int(value)


def parse_name(text: str) -> str:
    """One ``--name``: an IP literal (normalized) or a DNS name (lower case).

    A DNS name is dot-separated labels of letters, digits and inner hyphens,
    at most 63 characters each and 253 in all, with a last label that is not
    all digits; its first label may be ``*`` (a wildcard). Anything else,
    including an IPv6 zone (``%eth0``), is a ``ConfigError``.
    """
    value = text.strip().lower()
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
            raise ConfigError(f"--name {text!r}: an IPv6 zone (%...) cannot be in a certificate")
        return address.compressed
    labels = value.split(".")
    if labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]
    if (not value or len(value) > 253 or labels[-1].isdigit()
            or not all(_LABEL.fullmatch(label) for label in labels)):
        raise ConfigError(f"--name {text!r} is neither a DNS name (letters, digits and '-' in "
                          "dot-separated labels) nor an IP address")
    return value


def certificate_names(extra: Sequence[str]) -> tuple[str, ...]:
    """The subjectAltName entries: the loopback defaults, then each valid ``extra`` once."""
    if len(extra) > MAX_NAMES:
        raise ConfigError(f"at most {MAX_NAMES} --name values")
    names = list(DEFAULT_NAMES)
    for text in extra:
        name = parse_name(text)
        if name not in names:
            names.append(name)
    return tuple(names)


def openssl_config(names: Sequence[str], kind: KeyKind) -> str:
    """The ``openssl req`` configuration: subject and the v3 extensions, nothing else.

    ``names`` must come from :func:`certificate_names` (validated: no commas,
    newlines or other characters that could change the file's meaning).
    """
    san = ", ".join(f"IP:{name}" if _is_ip(name) else f"DNS:{name}" for name in names)
    return (
        "[req]\n"
        "prompt = no\n"
        "distinguished_name = subject\n"
        "x509_extensions = extensions\n"
        "[subject]\n"
        "CN = localhost\n"
        "O = phalanx development certificate (self-signed)\n"
        "[extensions]\n"
        "basicConstraints = critical, CA:FALSE\n"
        f"keyUsage = critical, {kind.key_usage}\n"
        "extendedKeyUsage = serverAuth\n"
        f"subjectAltName = {san}\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n"
    )


def sha256_fingerprint(cert_pem: str) -> str:
    """SHA-256 of the certificate's DER bytes in openssl's form: colon-separated upper hex."""
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _dev(args: argparse.Namespace) -> int:
    days = parse_days(args.days)
    names = certificate_names(args.name)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ConfigError("the 'openssl' command is needed to create a certificate and is not "
                          "on PATH: install the package 'openssl' (e.g. apt-get install openssl)")
    directory: Path = args.dir
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if not args.force:
        for path in (key_path, cert_path):
            if os.path.lexists(path):
                raise ConfigError(f"{path} already exists; give --force to replace the pair")
    _make_directory(directory)
    now = datetime.now(UTC)
    cert_pem, key_pem, kind = _generate(openssl, names, days)
    _install(key_path, key_pem, SECRET_MODE)
    _install(cert_path, cert_pem, PUBLIC_MODE)
    cert_abs, key_abs = cert_path.resolve(), key_path.resolve()
    until = (now + timedelta(days=days)).strftime("%Y-%m-%d %H:%M UTC")
    print(f"wrote a self-signed development certificate ({kind.label}, valid {days} days, "
          f"until {until})")
    print(f"  certificate  {cert_abs}")
    print(f"  private key  {key_abs}  (mode 0600: keep it private)")
    print(f"  names        {', '.join(names)}")
    print(f"  SHA-256      {sha256_fingerprint(cert_pem.decode('ascii'))}")
    print("serve the web UI over HTTPS with:")
    print(f"  --tls-cert {shlex.quote(str(cert_abs))} --tls-key {shlex.quote(str(key_abs))}")
    print("phalanx: warning: browsers and other clients will NOT trust this self-signed "
          "certificate (expect a warning page); use it for local development only",
          file=sys.stderr)
    return 0


def _generate(openssl: str, names: Sequence[str], days: int) -> tuple[bytes, bytes, KeyKind]:
    """Make the pair in a private temporary directory; (cert PEM, key PEM, key kind)."""
    work = Path(tempfile.mkdtemp(prefix="phalanx-certs-"))
    try:
        key, cert, config = work / "key.pem", work / "cert.pem", work / "req.cnf"
        kind = ECDSA_P256
        try:
            _openssl(openssl, "genpkey", *kind.genpkey_args, "-out", str(key))
        except ConfigError:  # an OpenSSL built without EC: fall back to RSA
            kind = RSA_2048
            _openssl(openssl, "genpkey", *kind.genpkey_args, "-out", str(key))
        config.write_text(openssl_config(names, kind), encoding="ascii")
        _openssl(openssl, "req", "-new", "-x509", "-config", str(config), "-key", str(key),
                 "-out", str(cert), "-days", str(days), "-sha256")
        cert_pem, key_pem = _read_pem(cert), _read_pem(key)
        try:  # the web server loads the pair with ssl: refuse now what it would refuse later
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"openssl made a certificate that Python's ssl cannot load: "
                              f"{exc}") from None
        return cert_pem, key_pem, kind
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _openssl(openssl: str, *args: str) -> None:
    """Run ``openssl ARGS``; a failure is a one-line ConfigError quoting openssl's last line."""
    try:
        result = subprocess.run(  # noqa: S603 - absolute path from shutil.which, no shell
            [openssl, *args], capture_output=True, text=True, errors="replace",
            timeout=OPENSSL_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"openssl {args[0]} did not finish within "
                          f"{OPENSSL_TIMEOUT_S:.0f} s") from None
    except OSError as exc:
        raise ConfigError(f"cannot run {openssl}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1][:300] if lines else f"exit status {result.returncode}"
        raise ConfigError(f"openssl {args[0]} failed: {detail}")


def _read_pem(path: Path) -> bytes:
    data = path.read_bytes()
    if not 0 < len(data) <= MAX_PEM_BYTES or not data.isascii():
        raise ConfigError(f"openssl wrote an unexpected {path.name} ({len(data)} bytes)")
    return data


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the directory {directory}: "
                          f"{exc.strerror or exc}") from None


def _install(path: Path, data: bytes, mode: int) -> None:
    try:
        write_atomic(path, data, mode)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
