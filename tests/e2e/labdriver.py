"""JupyterLab 4 on 127.0.0.1 and headless Chromium (Playwright), for the end-to-end test and
``benchmarks/bench_browser.py``.

The settings are those of ``PITFALLS.md``: fresh config/runtime/settings/workspace folders, no
news or update checks, notebook windowing off (else Lab skips rendering off-screen cells). The
browser is Debian's ``/usr/bin/chromium`` through Playwright's bundled driver (``playwright
install`` is never run), with WebGL on SwiftShader.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]
# Chromium's own compositor without a GPU (what it uses on a machine with no usable GPU): the
# page's layers are composited in software, only the damaged part of the page is redrawn; WebGL
# still runs on SwiftShader. With CHROMIUM_ARGS the compositor itself runs on SwiftShader's GL,
# which redraws the whole viewport for every frame (seen: 56 ms per frame for a 1400x1400 page
# on 2 loaded cores, which capped a 2D canvas at about 17 pictures per second).
SOFTWARE_COMPOSITOR_ARGS = [a for a in CHROMIUM_ARGS if a != "--use-angle=swiftshader"] + ["--disable-gpu"]
COMPOSITORS = {"swiftshader": CHROMIUM_ARGS, "software": SOFTWARE_COMPOSITOR_ARGS}
TIMEOUT_MS = 60_000  # every wait in the browser is bounded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path) -> None:
    for rel, text in (
        ("@jupyterlab/apputils-extension/notification.jupyterlab-settings", '{"fetchNews": "false"}'),
        ("@jupyterlab/notebook-extension/tracker.jupyterlab-settings", '{"windowingMode": "none"}'),
    ):
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@contextlib.contextmanager
def jupyterlab(base: Path, notebook: Path):
    """A JupyterLab server serving a copy of ``notebook``; yields ``{'url', 'log'}``; stopped after."""
    root = base / "root"
    root.mkdir(parents=True)
    shutil.copy(notebook, root / notebook.name)
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
        folder = base / var.lower()
        folder.mkdir()
        env[var] = str(folder)
    _write_settings(Path(env["JUPYTERLAB_SETTINGS_DIR"]))
    port, token = free_port(), secrets.token_hex(16)
    log = open(base / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not start: {(base / 'server.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)
        yield {"url": f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?reset&token={token}",
               "log": base / "server.log"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
        log.close()


@contextlib.contextmanager
def chromium(profile: Path, viewport=(1400, 1300), compositor: str = "swiftshader"):
    """A Playwright page in headless Chromium; ``page.errors`` collects page errors.
    ``compositor``: ``'swiftshader'`` (GL compositing on SwiftShader) or ``'software'``
    (see ``SOFTWARE_COMPOSITOR_ARGS``)."""
    from playwright.sync_api import sync_playwright

    if compositor not in COMPOSITORS:
        raise ValueError(f"`compositor` must be one of {sorted(COMPOSITORS)}; got {compositor!r}")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=COMPOSITORS[compositor],
            viewport={"width": viewport[0], "height": viewport[1]}, timeout=TIMEOUT_MS,
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            pg = context.new_page()
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            pg.errors = errors
            yield pg
        finally:
            context.close()


_PROMPT = "document.querySelectorAll('.jp-Notebook .jp-Cell')[{n}].querySelector('.jp-InputArea-prompt').innerText"


def run_cell(page, n: int) -> None:
    """Run cell ``n`` in place (Ctrl+Enter: no new cell, no scrolling) and wait until the
    kernel has run it (its prompt shows a new number).

    Right after the page reports an idle kernel, JupyterLab can still drop the keypress (its
    session is not connected yet): then the prompt stays unchanged and it is pressed again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    before = page.evaluate(_PROMPT.format(n=n))
    for _ in range(5):
        page.locator(".jp-Notebook .jp-Cell").nth(n).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(f"(() => {{ const p = {_PROMPT.format(n=n)};"
                                   f" return p !== {json.dumps(before)} && !p.includes('*'); }})()",
                                   timeout=10_000)
            return
        except PlaywrightTimeout:
            if "*" in page.evaluate(_PROMPT.format(n=n)):  # queued or running: wait for it
                page.wait_for_function(f"(() => !{_PROMPT.format(n=n)}.includes('*'))()",
                                       timeout=120_000)
                return
    raise AssertionError(f"cell {n} did not run (prompt {before!r})")


def open_notebook(page, url: str) -> None:
    """Open the notebook and wait for an idle kernel. A dialog JupyterLab may raise on a slow
    start (e.g. the kernel choice) is answered with its default button."""
    page.goto(url)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"], .jp-Dialog')
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            break
        dialog.locator(".jp-mod-accept").first.click()
        page.wait_for_timeout(500)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
