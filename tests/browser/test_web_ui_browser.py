"""The web UI in a real browser (Debian's Chromium driven by playwright), on a real run.

``phalanx run --web`` loads a script whose request names and failure
messages carry markup; the test signs in as a viewer and as an admin and
checks what a user sees and what a page can do: markup shown as text (no
dialog, no injected element, no CSP violation), no control for a viewer,
and a working stop button for an admin.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.target import ThreadedTarget, start_in_thread

from phalanx.web.accounts import UserStore, add_user
from phalanx.web.passwords import Passwords
from phalanx.web.rbac import Role

CHROMIUM = "/usr/bin/chromium"
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
ADMIN_PASSWORD = "browser-admin-password"
VIEWER_PASSWORD = "browser-viewer-password"

SCRIPT = f'''
from phalanx import HttpUser, task, constant

XSS = {XSS!r}

class Marked(HttpUser):
    wait_time = constant(0.2)

    @task
    async def named(self):
        await self.client.get("/items/1", name="/items/" + XSS)

    @task
    async def failing(self):
        async with self.client.get("/status/500", catch_response=True) as r:
            r.failure("broken " + XSS)
'''

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="Chromium is not installed here (scripts/ensure-tools.sh installs it; CI has it)",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def target() -> Iterator[ThreadedTarget]:
    with start_in_thread() as running:
        yield running


@pytest.fixture
def web_run(tmp_path: Path, target: ThreadedTarget) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    store = UserStore.open(tmp_path / "users.json", create=True)
    cheap = Passwords(_cheap_parameters())
    add_user(store, "admin", Role.ADMIN, ADMIN_PASSWORD, passwords=cheap, now=time.time())
    add_user(store, "vera", Role.VIEWER, VIEWER_PASSWORD, passwords=cheap, now=time.time())
    (tmp_path / "marked.py").write_text(SCRIPT)
    with phalanx_web(tmp_path, "-f", "marked.py", "--host", target.url, "-u", "2", "-r", "10",
                     "-t", "60s", "--live", "off", "--web", "--autostart", "--user-store",
                     "users.json", "--max-fail-ratio", "1") as running:
        yield running


@contextlib.contextmanager
def phalanx_web(tmp_path: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m phalanx run ARGS --web-bind 127.0.0.1:PORT``, once it listens; stopped
    (SIGTERM, then SIGKILL) on the way out."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    log_path = tmp_path / "run.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "phalanx", "run", *args, "--web-bind", f"127.0.0.1:{port}"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log_path.read_text()) from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _cheap_parameters():  # type: ignore[no-untyped-def]
    import argon2

    return argon2.Parameters(type=argon2.Type.ID, version=19, salt_len=16, hash_len=32,
                             time_cost=1, memory_cost=8, parallelism=1)


def _browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    browser = manager.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync"])
    return manager, browser


def _sign_in(page, url: str, user: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_markup_is_text_a_viewer_cannot_control_and_an_admin_can_stop(
        web_run: tuple[str, subprocess.Popen[str]]) -> None:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("Chromium is required in CI (scripts/ensure-tools.sh installs it)")
    url, process = web_run
    manager, browser = _browser()
    try:
        context = browser.new_context()
        page = context.new_page()
        dialogs: list[str] = []
        problems: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("console", lambda msg: problems.append(msg.text)
                if msg.type == "error" else None)

        # Anonymous: the dashboard sends the browser to the login page.
        page.goto(f"{url}/")
        assert page.url == f"{url}/login"
        page.fill("input[name=username]", "vera")
        page.fill("input[name=password]", "not-the-password")
        page.click("button[type=submit]")
        assert page.locator(".error").inner_text() == "wrong user name or password"

        _sign_in(page, url, "vera", VIEWER_PASSWORD)
        row = page.locator("#stats tbody tr", has_text="/items/<img")
        row.first.wait_for(timeout=15_000)
        assert XSS in row.first.inner_text()
        failure = page.locator("#errors tbody tr", has_text="broken <img")
        failure.first.wait_for(timeout=15_000)
        assert page.evaluate("window.__pwned === undefined")
        assert page.locator("main img").count() == 0
        assert page.locator("#stop-button").count() == 0  # a viewer gets no control
        # Even a hand-made request from the viewer's page is refused.
        status = page.evaluate("""async () => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/api/v1/run/stop', {method: 'POST',
                headers: {'X-CSRF-Token': token, 'Content-Type': 'application/json'}, body: '{}'});
            return r.status; }""")
        assert status == 403
        assert dialogs == []
        assert not [p for p in problems if re.search(r"Content Security Policy", p)]
        context.close()

        admin = browser.new_context().new_page()
        _sign_in(admin, url, "admin", ADMIN_PASSWORD)
        admin.locator("#stop-button").click()
        admin.locator("#control-message", has_text="done").wait_for(timeout=10_000)
        assert process.wait(timeout=30) in (0, 1)
    finally:
        browser.close()
        manager.stop()


def test_an_operator_starts_a_test_from_the_ui_and_a_host_outside_the_scope_is_refused(
        tmp_path: Path, target: ThreadedTarget) -> None:
    import asyncio
    import threading

    from tests.support.target import serve

    # A listener on 127.0.0.2 that must never see a connection.
    ready = threading.Event()
    forbidden: dict[str, object] = {}
    stop = threading.Event()

    def listen() -> None:
        async def main() -> None:
            async with serve(host="127.0.0.2") as server:
                forbidden["server"] = server
                ready.set()
                while not stop.is_set():
                    await asyncio.sleep(0.05)

        asyncio.run(main())

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10)
    server = forbidden["server"]
    store = UserStore.open(tmp_path / "users.json", create=True)
    add_user(store, "otto", Role.OPERATOR, ADMIN_PASSWORD, passwords=Passwords(_cheap_parameters()),
             now=time.time())
    add_user(store, "admin", Role.ADMIN, ADMIN_PASSWORD, passwords=Passwords(_cheap_parameters()),
             now=time.time())
    (tmp_path / "marked.py").write_text(SCRIPT)
    try:
        with contextlib.ExitStack() as stack:
            url, process = stack.enter_context(phalanx_web(
                tmp_path, "-f", "marked.py", "--host", target.url, "--live", "off", "--web",
                "--user-store", "users.json"))
            manager, browser = _browser()
            stack.callback(manager.stop)
            stack.callback(browser.close)
            page = browser.new_context().new_page()
            _sign_in(page, url, "otto", ADMIN_PASSWORD)
            page.locator("#start-form").wait_for(timeout=10_000)
            page.fill("#start-users", "2")
            page.fill("#start-rate", "10")
            page.fill("#start-host", server.url)  # type: ignore[attr-defined]
            page.click("#start-form button[type=submit]")
            page.locator("#control-message", has_text="outside the allowed targets").wait_for(
                timeout=10_000)
            page.fill("#start-host", "")
            page.click("#start-form button[type=submit]")
            page.locator("#stop-button").wait_for(state="visible", timeout=15_000)
            page.locator("#stats tbody tr", has_text="/items/").first.wait_for(timeout=15_000)
            # The charts draw (a flat line has no height: "attached", not "visible").
            page.locator("#chart-rps polyline").first.wait_for(state="attached", timeout=15_000)
            page.click("#stop-button")
            page.locator("#start-form").wait_for(state="visible", timeout=15_000)
            assert server.stats.connections == 0  # type: ignore[attr-defined]
            page.click("#logout-form button")
            page.wait_for_url(f"{url}/login")
            assert page.evaluate("async () => (await fetch('/api/v1/status')).status") == 401
            process.terminate()  # SIGTERM: phalanx stops and exits
            assert process.wait(timeout=30) in (0, 1)
    finally:
        stop.set()
        thread.join(timeout=10)


def test_an_admin_manages_users_and_tokens_in_the_browser(
        web_run: tuple[str, subprocess.Popen[str]]) -> None:
    url, _process = web_run
    manager, browser = _browser()
    try:
        page = browser.new_context().new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text)
                if msg.type == "error" else None)
        page.on("dialog", lambda dialog: dialog.accept())  # "remove nina?" confirmations
        _sign_in(page, url, "admin", ADMIN_PASSWORD)
        page.click("nav a[href='/admin']")
        page.wait_for_url(f"{url}/admin")
        page.fill("#add-user-name", "nina")
        page.select_option("#add-user-role", "viewer")
        page.fill("#add-user-password", "nina-password-123")
        page.click("#add-user-form button[type=submit]")
        page.locator("#users-table tbody tr[data-user=nina]").wait_for(timeout=10_000)
        # The last admin cannot be demoted: the refusal is shown, nothing changes.
        page.locator("#users-table tbody tr[data-user=admin] select").select_option("viewer")
        page.locator("#admin-message.error").wait_for(timeout=10_000)
        page.fill("#token-label", XSS)
        page.select_option("#token-role", "viewer")
        page.click("#token-form button[type=submit]")
        page.locator("#token-created:not([hidden])").wait_for(timeout=10_000)
        token = page.eval_on_selector("#token-secret", "e => e.value")
        assert token.startswith("phx_")
        assert XSS in page.locator("#tokens-table tbody tr").first.inner_text()
        assert page.evaluate("window.__pwned === undefined")
        assert not [p for p in problems if "Content Security Policy" in p]

        nina = browser.new_context().new_page()
        _sign_in(nina, url, "nina", "nina-password-123")
        assert nina.locator("nav a[href='/admin']").count() == 0
        status = nina.evaluate("async () => (await fetch('/api/v1/users')).status")
        assert status == 403
        # The admin removes nina: her open session ends on her next request.
        page.locator("#users-table tbody tr[data-user=nina] button", has_text="Remove").click()
        page.locator("#admin-message", has_text="nina removed").wait_for(timeout=10_000)
        assert nina.evaluate("async () => (await fetch('/api/v1/status')).status") == 401
    finally:
        browser.close()
        manager.stop()


def test_a_reached_limit_is_shown_as_a_warning_on_the_dashboard(
        tmp_path: Path, target: ThreadedTarget) -> None:
    store = UserStore.open(tmp_path / "users.json", create=True)
    add_user(store, "vera", Role.VIEWER, VIEWER_PASSWORD,
             passwords=Passwords(_cheap_parameters()), now=time.time())
    (tmp_path / "marked.py").write_text(SCRIPT)
    # 16 MiB of resident memory is less than any Python process: spawning pauses at once.
    with contextlib.ExitStack() as stack:
        url, _process = stack.enter_context(phalanx_web(
            tmp_path, "-f", "marked.py", "--host", target.url, "-u", "2", "-t", "60s",
            "--live", "off", "--web", "--autostart", "--max-memory", "16M", "--user-store",
            "users.json"))
        manager, browser = _browser()
        stack.callback(manager.stop)
        stack.callback(browser.close)
        page = browser.new_context().new_page()
        _sign_in(page, url, "vera", VIEWER_PASSWORD)
        page.locator("#warnings", has_text="memory limit").wait_for(timeout=15_000)
