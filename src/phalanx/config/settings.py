"""The one immutable ``Settings`` object of a run, and the table it is built from.

Every option is declared once in :data:`OPTIONS` (name, parser, default, help,
flags); the CLI, the TOML config file and ``PHALANX_*`` environment variables
are all derived from that table, so they cannot drift apart.

Precedence, lowest first: defaults < config file < environment < command line.
Each layer is validated as it is read, so an error names where the bad value
came from (``--users``, ``PHALANX_USERS`` or ``phalanx.toml: users``).

Invariants of a built :class:`Settings`: ``users >= 1``; ``spawn_rate > 0``;
``users <= max_users``; ``spawn_rate <= max_spawn_rate``; ``host`` is ``None``
or an ``http``/``https`` URL with a host; durations are finite and >= 0.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from phalanx.config.durations import parse_duration
from phalanx.core.errors import ConfigError
from phalanx.security.scope import ScopeRule

ENV_PREFIX = "PHALANX_"
# Environment variables under these prefixes belong to other features, not to settings.
ENV_RESERVED_PREFIXES = ("PHALANX_SECRET_",)
ENV_NON_SETTINGS = frozenset({"PHALANX_CONFIG", "PHALANX_ADMIN_PASSWORD", "PHALANX_COMPILE"})
"""``PHALANX_*`` variables that are not run settings (``PHALANX_COMPILE`` is read by the build)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run is configured with. Built at the edge, passed down, never mutated."""

    file: str | None = None
    host: str | None = None
    users: int = 1
    spawn_rate: float = 1.0
    run_time: float | None = None
    stop_timeout: float = 0.0
    user_classes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    allow_targets: tuple[str, ...] = ()
    json: str | None = None
    csv: str | None = None
    live: str = "auto"
    stats_interval: float = 1.0
    summary_interval: float = 10.0
    max_fail_ratio: float = 0.0
    connect_timeout: float = 10.0
    request_timeout: float = 60.0
    ca_file: str | None = None
    secrets_dir: str | None = None
    max_users: int = 100_000
    max_spawn_rate: float = 10_000.0
    max_memory: int | None = None
    max_connections: int | None = None
    seed: int | None = None
    log_level: str = "INFO"
    # distributed mode (phalanx master / worker / run --processes)
    bind: str = "tcp://127.0.0.1:5557"
    master: str | None = None
    keys: str | None = None
    worker_name: str = "w1"
    expect_workers: int = 1
    expect_workers_timeout: float = 60.0
    heartbeat_timeout: float = 10.0
    master_timeout: float = 10.0
    report_interval: float = 2.0
    max_workers: int = 1_000
    max_users_per_worker: int = 100_000
    max_worker_message_rate: float = 50.0
    processes: int | None = None
    insecure_plaintext: bool = False
    headless: bool = False
    # web UI (phalanx run --web, phalanx master --web)
    web: bool = False
    autostart: bool = False
    web_bind: str = "127.0.0.1:8089"
    tls_cert: str | None = None
    tls_key: str | None = None
    web_trusted_proxies: tuple[str, ...] = ()
    web_public_url: str | None = None
    user_store: str | None = None
    admin_password_file: str | None = None
    audit_log: str | None = None
    config_file: str | None = field(default=None, compare=False)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (the object itself never changes)."""
        return dataclasses.replace(self, **changes)


# --- value parsers: each takes the raw value (str from CLI/env, any from TOML) ----------


def _int_at_least(minimum: int) -> Callable[[object], int]:
    def parse(raw: object) -> int:
        if isinstance(raw, bool):
            raise ValueError(f"expected an integer, got {raw!r}")
        if isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip()
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _float_range(
    minimum: float, *, exclusive: bool = False, maximum: float | None = None
) -> Callable[[object], float]:
    def parse(raw: object) -> float:
        if isinstance(raw, bool):
            raise ValueError(f"expected a number, got {raw!r}")
        try:
            value = float(raw) if isinstance(raw, int | float) else float(str(raw).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {raw!r}")
        if exclusive and value <= minimum:
            raise ValueError(f"must be greater than {minimum:g}, got {value:g}")
        if not exclusive and value < minimum:
            raise ValueError(f"must be at least {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum:g}, got {value:g}")
        return value

    return parse


def _duration(raw: object) -> float:
    value = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    if value is None:
        value = parse_duration(str(raw))
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a non-negative duration, got {raw!r}")
    return value


def _positive_duration(raw: object) -> float:
    value = _duration(raw)
    if value <= 0:
        raise ValueError(f"must be a positive duration, got {raw!r}")
    return value


def _optional_run_time(raw: object) -> float | None:
    """A positive duration; empty or ``none`` means "until stopped" (0 is refused: ambiguous)."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none")):
        return None
    value = _duration(raw)
    if value <= 0:
        raise ValueError(f"must be a positive duration, got {raw!r} "
                         "(leave it unset to run until Ctrl-C)")
    return value


def _host(raw: object) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    if "@" in text:  # checked first, and the value is never echoed: it may hold a password
        raise ValueError(
            "credentials (user:password@) in the host URL are refused; "
            "send them from the script (headers or phalanx secrets)"
        )
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{text!r} must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"{text!r} has no host name")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"{text!r} has an invalid port") from None
    return text.rstrip("/")


def _text(raw: object) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _flag(raw: object) -> bool:
    """A switch: true/false, yes/no, on/off, 1/0 (a bare flag on the command line is true)."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


_ENDPOINT_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]|\*")


def _endpoint(raw: object, *, allow_any_port: bool = False) -> str | None:
    """``HOST:PORT`` (tcp), ``tcp://HOST:PORT`` or ``ipc:///path`` as a ZeroMQ endpoint."""
    text = _text(raw)
    if text is None:
        return None
    if text.startswith("ipc://"):
        if len(text) == len("ipc://") or text.startswith("ipc://@"):
            raise ValueError(f"{text!r}: give a socket file path, e.g. ipc:///run/phalanx/m.sock")
        return text
    if "://" in text and not text.startswith("tcp://"):
        raise ValueError(f"{text!r}: use HOST:PORT, tcp://HOST:PORT or ipc:///PATH")
    address = text.removeprefix("tcp://")
    host, sep, port = address.rpartition(":")
    lowest = 0 if allow_any_port else 1
    if not sep or not _ENDPOINT_HOST.fullmatch(host) or not port.isdigit() \
            or not lowest <= int(port) < 65536:
        raise ValueError(f"{text!r}: expected HOST:PORT with a port in 1-65535")
    return f"tcp://{host}:{int(port)}"


def _bind_endpoint(raw: object) -> str:
    """Where to listen; port 0 picks a free port (the master logs the one it got)."""
    value = _endpoint(raw, allow_any_port=True)
    if value is None:
        raise ValueError("must not be empty")
    return value


def _worker_label(raw: object) -> str:
    text = str(raw).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", text):
        raise ValueError(f"{text!r}: use letters, digits, '_', '.', '-' (at most 64)")
    return text


def _heartbeat_timeout(raw: object) -> float:
    value = _duration(raw)
    if not 3.0 <= value <= 600.0:
        raise ValueError(f"must be between 3s and 10m, got {raw!r}")
    return value


def _web_bind(raw: object) -> str:
    """``HOST:PORT`` (IPv6 in brackets); port 0 picks a free one."""
    text = str(raw).strip()
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536 \
            or not _ENDPOINT_HOST.fullmatch(host if ":" not in host else f"[{host}]"):
        raise ValueError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:8089")
    return f"{host}:{int(port)}" if ":" not in host else f"[{host}]:{int(port)}"


def _proxy_list(raw: object) -> tuple[str, ...]:
    items = [str(item) for item in raw] if isinstance(raw, list | tuple) else str(raw).split(",")
    proxies = tuple(item.strip() for item in items if item.strip())
    for proxy in proxies:
        try:
            network = ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError(f"{proxy!r} is not an IP address or CIDR") from None
        if network.prefixlen == 0:
            raise ValueError("trusting every address as a proxy is refused")
    return proxies


def _public_url(raw: object) -> str | None:
    text = _text(raw)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{text!r}: expected https://HOST[:PORT] (the proxy serves HTTPS)")
    return f"https://{parts.netloc.lower()}"


def _master_timeout(raw: object) -> float:
    """At least three master heartbeats (one a second): losing one never stops load."""
    value = _duration(raw)
    if not 3.0 <= value <= 60.0:
        raise ValueError(f"must be between 3s and 60s, got {raw!r}")
    return value


def _name_list(raw: object) -> tuple[str, ...]:
    items = [str(item) for item in raw] if isinstance(raw, list | tuple) else str(raw).split(",")
    names = tuple(item.strip() for item in items if item.strip())
    return names


def _target_rules(raw: object) -> tuple[str, ...]:
    """Scope rules (host, *.wildcard, IP, CIDR, URL; optional port), each checked now."""
    if isinstance(raw, list | tuple):
        items = [part for item in raw for part in str(item).split(",")]
    else:
        items = str(raw).split(",")
    rules = tuple(item.strip() for item in items if item.strip())
    for rule in rules:
        ScopeRule.parse(rule)  # ValueError names the rule
    return rules


_SIZE_UNITS = {"": 1 << 20, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20,
               "mb": 1000**2, "mib": 1 << 20, "g": 1 << 30, "gb": 1000**3, "gib": 1 << 30}


def _memory_size(raw: object) -> int | None:
    """Bytes from ``512``/``512M``/``512MiB``/``2G``/``2GB`` (a bare number is MiB); ``none``."""
    text = str(raw).strip().lower().replace(" ", "")
    if text in ("", "none"):
        return None
    number = text.rstrip("kmgib")
    unit = text[len(number):]
    if unit not in _SIZE_UNITS:
        raise ValueError(f"{raw!r} is not a size (examples: 512M, 2G, 1500MB; a number is MiB)")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{raw!r} is not a size (examples: 512M, 2G, 1500MB)") from None
    size = int(value * _SIZE_UNITS[unit])
    if not math.isfinite(value) or size < 16 << 20:
        raise ValueError(f"must be at least 16 MiB, got {raw!r}")
    return size


def _choice(*choices: str) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        text = str(raw).strip()
        if text.lower() not in choices and text.upper() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {text!r}")
        return text.upper() if text.upper() in choices else text.lower()

    return parse


def _seed(raw: object) -> int | None:
    if raw is None or str(raw).strip() == "":
        return None
    return _int_at_least(0)(raw)


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its parser, its command-line flags and its help text."""

    name: str
    parse: Callable[[object], Any]
    help: str
    flags: tuple[str, ...]
    metavar: str | None = None
    positional: bool = False
    repeatable: bool = False
    switch: bool = False  # a flag without a value on the command line (``--insecure-plaintext``)

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        """The long flag (``--users``), used to name the option in messages."""
        long_flags = [flag for flag in self.flags if flag.startswith("--")]
        return long_flags[0] if long_flags else self.name


OPTIONS: tuple[Option, ...] = (
    Option("file", _text, "the script that defines the simulated users (a .py file)",
           ("-f", "--file"), "SCRIPT"),
    Option("host", _host, "base URL of the system under test, e.g. http://127.0.0.1:8080 "
           "(overrides the `host` of every User class)", ("-H", "--host"), "URL"),
    Option("users", _int_at_least(1), "number of concurrent simulated users (default 1)",
           ("-u", "--users"), "N"),
    Option("spawn_rate", _float_range(0.0, exclusive=True),
           "users started (or stopped) per second while ramping (default 1)",
           ("-r", "--spawn-rate"), "PER_S"),
    Option("run_time", _optional_run_time,
           "stop after this long, e.g. 90, 30s, 2m, 1h30m (default: until Ctrl-C)",
           ("-t", "--run-time"), "DURATION"),
    Option("stop_timeout", _duration,
           "on stop, let users finish their current task for up to this long (default 0)",
           ("-s", "--stop-timeout"), "DURATION"),
    Option("user_classes", _name_list, "run only these User classes of the script (default all)",
           (), "USER_CLASS", positional=True),
    Option("tags", _name_list, "run only tasks with any of these tags (comma separated)",
           ("-T", "--tags"), "TAG,…"),
    Option("exclude_tags", _name_list, "skip tasks with any of these tags (comma separated)",
           ("-E", "--exclude-tags"), "TAG,…"),
    Option("allow_targets", _target_rules,
           "hosts the load may go to (repeatable; host, *.domain, IP, CIDR, URL, optional "
           ":port); default: only the --host. Checked after DNS and on every redirect",
           ("--allow-target",), "RULE", repeatable=True),
    Option("json", _text, "write the final summary (with percentiles) as JSON to FILE",
           ("--json",), "FILE"),
    Option("csv", _text, "write PREFIX_stats.csv, PREFIX_failures.csv and PREFIX_exceptions.csv",
           ("--csv",), "PREFIX"),
    Option("live", _choice("auto", "on", "off"),
           "live terminal view: auto (when stdout is a terminal), on, off", ("--live",),
           "MODE"),
    Option("stats_interval", _float_range(0.05, maximum=60.0),
           "seconds between stats updates (default 1)", ("--stats-interval",), "SECONDS"),
    Option("summary_interval", _float_range(0.0),
           "without the live view, print a progress line this often; 0 disables (default 10)",
           ("--summary-interval",), "SECONDS"),
    Option("max_fail_ratio", _float_range(0.0, maximum=1.0),
           "exit 1 when the share of failed requests exceeds this (default 0: any failure)",
           ("--max-fail-ratio",), "RATIO"),
    Option("connect_timeout", _positive_duration, "TCP+TLS connect timeout (default 10s)",
           ("--connect-timeout",), "DURATION"),
    Option("request_timeout", _positive_duration,
           "total timeout of one request, redirects included (default 60s)",
           ("--request-timeout",), "DURATION"),
    Option("ca_file", _text, "extra CA certificates (PEM) to trust for the target's TLS",
           ("--ca-file",), "PEM"),
    Option("secrets_dir", _text,
           "directory of secret files for phalanx.secrets.get (e.g. a Kubernetes secret mount; "
           "files must not be readable by group or others)", ("--secrets-dir",), "DIR"),
    Option("max_users", _int_at_least(1), "refuse more users than this (default 100000)",
           ("--max-users",), "N"),
    Option("max_spawn_rate", _float_range(0.0, exclusive=True),
           "refuse a spawn rate above this (default 10000)", ("--max-spawn-rate",), "PER_S"),
    Option("max_memory", _memory_size,
           "pause spawning while this process's resident memory is above this (e.g. 2G; "
           "default: 75%% of the machine's memory or of the container's limit)",
           ("--max-memory",), "SIZE"),
    Option("max_connections", _int_at_least(1),
           "cap on this process's open connections: spawning pauses at it and further "
           "connects fail (kind connection_limit); default: 90%% of the file-descriptor limit",
           ("--max-connections",), "N"),
    Option("seed", _seed, "seed for task selection and wait times (the same sequence of "
           "choices; exactly reproducible with one user)",
           ("--seed",), "N"),
    Option("log_level", _choice("DEBUG", "INFO", "WARNING", "ERROR"),
           "log level (default INFO)", ("-L", "--log-level"), "LEVEL"),
    Option("bind", _bind_endpoint,
           "where the master listens for workers: HOST:PORT, tcp://HOST:PORT or ipc:///PATH "
           "(default 127.0.0.1:5557; any other address needs CURVE keys, see --keys)",
           ("--bind",), "ADDRESS"),
    Option("master", _endpoint, "the master to join: HOST:PORT, tcp://HOST:PORT or ipc:///PATH",
           ("--master",), "ADDRESS"),
    Option("keys", _text, "keys directory (phalanx keys init): the master reads master.key and "
           "authorized_workers; a worker reads master.key.pub and workers/NAME.key",
           ("--keys",), "DIR"),
    Option("worker_name", _worker_label,
           "this worker's key name in the keys directory (workers/NAME.key; default w1)",
           ("--name",), "NAME"),
    Option("expect_workers", _int_at_least(1),
           "wait for this many workers before starting the load (default 1)",
           ("--expect-workers",), "N"),
    Option("expect_workers_timeout", _positive_duration,
           "give up (exit 2) if the expected workers have not joined by then (default 60s)",
           ("--expect-workers-timeout",), "DURATION"),
    Option("heartbeat_timeout", _heartbeat_timeout,
           "a worker silent this long is marked missing and its users go to the others "
           "(default 10s)", ("--heartbeat-timeout",), "DURATION"),
    Option("master_timeout", _master_timeout,
           "a worker that has not heard its master for this long stops all its load "
           "(default 10s; 3s to 60s)", ("--master-timeout",), "DURATION"),
    Option("report_interval", _float_range(0.2, maximum=60.0),
           "seconds between a worker's stats reports to the master (default 2)",
           ("--report-interval",), "SECONDS"),
    Option("max_workers", _int_at_least(1), "refuse workers beyond this many (default 1000)",
           ("--max-workers",), "N"),
    Option("max_users_per_worker", _int_at_least(1),
           "never give one worker more users than this (default 100000)",
           ("--max-users-per-worker",), "N"),
    Option("max_worker_message_rate", _float_range(1.0, maximum=100_000.0),
           "messages per second a worker may send; beyond it they are dropped (default 50)",
           ("--max-worker-message-rate",), "PER_S"),
    Option("processes", _int_at_least(1),
           "run this many local worker processes under an in-process master (one command; "
           "the link is a private ipc:// socket)", ("--processes",), "N"),
    Option("insecure_plaintext", _flag,
           "DEVELOPMENT ONLY: no encryption and no authentication between master and workers; "
           "refused on anything but ipc:// and 127.x.x.x", ("--insecure-plaintext",),
           switch=True),
    Option("web", _flag, "serve the web UI and REST API (login required; see --web-bind)",
           ("--web",), switch=True),
    Option("autostart", _flag, "with --web: start the test at once with these settings and "
           "exit when it ends (default: wait for a start from the web UI)", ("--autostart",),
           switch=True),
    Option("web_bind", _web_bind, "where the web UI listens (default 127.0.0.1:8089; another "
           "address needs --tls-cert and --tls-key)", ("--web-bind",), "HOST:PORT"),
    Option("tls_cert", _text, "certificate (PEM) for serving the web UI over HTTPS",
           ("--tls-cert",), "PEM"),
    Option("tls_key", _text, "private key (PEM) of --tls-cert", ("--tls-key",), "PEM"),
    Option("web_trusted_proxies", _proxy_list,
           "TLS is terminated by these proxies (IPs or CIDRs, repeatable): the UI may bind "
           "any address without --tls-cert, trusts X-Forwarded-For/-Proto from them only, "
           "and refuses requests that did not come through them as https",
           ("--web-trusted-proxy",), "IP", repeatable=True),
    Option("web_public_url", _public_url, "the UI's address as browsers see it, e.g. "
           "https://phalanx.example.com: the host name requests must carry (needed with "
           "--web-trusted-proxy; with --tls-cert, for a UI bound to 0.0.0.0 or another name)",
           ("--web-public-url",), "URL"),
    Option("user_store", _text, "the web UI's user and token store (phalanx users ...; "
           "default: phalanx-users.json here, or PHALANX_USER_STORE)", ("--user-store",),
           "FILE"),
    Option("admin_password_file", _text, "on first start with an empty user store, the "
           "password of the 'admin' user is read from FILE (0600) instead of generated "
           "(also PHALANX_ADMIN_PASSWORD)", ("--admin-password-file",), "FILE"),
    Option("audit_log", _text, "append the audit log (hash-chained JSON lines) to FILE "
           "(default: phalanx-audit.jsonl next to the user store)", ("--audit-log",), "FILE"),
    Option("headless", _flag, "accepted for Locust compatibility: phalanx masters are headless "
           "(the web UI comes with --web)", ("--headless",), switch=True),
)
OPTIONS_BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}


def _apply(
    values: dict[str, Any], raw: Mapping[str, object], source: Callable[[Option], str]
) -> None:
    for name, value in raw.items():
        option = OPTIONS_BY_NAME[name]
        try:
            values[name] = option.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{source(option)}: {exc}") from None


def read_config_file(path: str | Path) -> dict[str, object]:
    """Read a TOML config file: top-level keys or a ``[phalanx]`` table.

    Keys may use ``-`` or ``_``. Unknown keys are an error that suggests the
    closest known key.
    """
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {file} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {file} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    table = data.get("phalanx", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {file}: [phalanx] must be a table")
    result: dict[str, object] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in OPTIONS_BY_NAME:
            hint = difflib.get_close_matches(name, list(OPTIONS_BY_NAME), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"config file {file}: unknown setting {key!r}{suggestion}")
        result[name] = value
    return result


def read_environment(environ: Mapping[str, str]) -> tuple[dict[str, object], list[str]]:
    """Settings from ``PHALANX_*`` variables, and warnings for unknown ones."""
    result: dict[str, object] = {}
    warnings: list[str] = []
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key in ENV_NON_SETTINGS:
            continue
        if key.startswith(ENV_RESERVED_PREFIXES):
            continue
        name = key[len(ENV_PREFIX):].lower()
        if name not in OPTIONS_BY_NAME:
            warnings.append(f"ignoring unknown environment variable {key}")
            continue
        result[name] = value
    return result, warnings


def build_settings(
    *,
    cli: Mapping[str, object],
    environ: Mapping[str, str],
    config_file: str | None = None,
) -> tuple[Settings, list[str]]:
    """Merge the layers into one validated :class:`Settings` (and warnings to show).

    ``cli`` holds only the options given on the command line (raw strings).
    ``config_file`` comes from ``--config`` or ``PHALANX_CONFIG``.
    """
    values: dict[str, Any] = {}
    path = config_file or environ.get("PHALANX_CONFIG") or None
    if path:
        _apply(values, read_config_file(path), lambda o: f"config file {path}: {o.name}")
    env_values, warnings = read_environment(environ)
    _apply(values, env_values, lambda o: o.env_var)
    _apply(values, cli, lambda o: o.flag if o.flags else o.metavar or o.name)
    settings = Settings(**values, config_file=path)
    _check_consistency(settings)
    return settings, warnings


def _check_consistency(settings: Settings) -> None:
    if settings.web_trusted_proxies and not settings.web_public_url:
        raise ConfigError("--web-trusted-proxy needs --web-public-url (the address the proxy "
                          "serves over HTTPS)")
    if settings.web_public_url and not (settings.web_trusted_proxies or settings.tls_cert):
        raise ConfigError("--web-public-url is for HTTPS: give --tls-cert/--tls-key, or "
                          "--web-trusted-proxy when a proxy terminates TLS")
    if settings.users > settings.max_users:
        raise ConfigError(
            f"--users {settings.users} is above the limit --max-users {settings.max_users}"
        )
    if settings.spawn_rate > settings.max_spawn_rate:
        raise ConfigError(
            f"--spawn-rate {settings.spawn_rate:g} is above the limit "
            f"--max-spawn-rate {settings.max_spawn_rate:g}"
        )
    overlap = set(settings.tags) & set(settings.exclude_tags)
    if overlap:
        raise ConfigError(f"tags both included and excluded: {', '.join(sorted(overlap))}")
