"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages ending in a NUL byte, written to the browser's fd 3 and read from its fd 4), so
the tests need no WebDriver and no websocket library.

``open_page(url)`` loads a page and returns what a test checks: every image's load state, the
console's errors (console.error calls, uncaught exceptions, and the browser's own log entries
such as blocked requests and Content-Security-Policy violations), JavaScript dialogs that
opened (an ``alert`` from injected script), and a PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--window-size=1280,1600"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    images: list[dict]  # src prefix, complete, naturalWidth, naturalHeight
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    title: str = ""


class _Browser:
    def __init__(self, binary: str, profile: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the browser reads commands on fd 3 and writes replies on fd 4
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=_fds(to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)
        raise TimeoutError(f"no reply to {method}")

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            event = self._read(deadline)
            self._event(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(f"no {method} event")

    def _event(self, event: dict) -> None:
        self.events.append(event)
        if event.get("method") == "Page.javascriptDialogOpening":
            # a dialog blocks the page (its load event too) until it is answered
            self.send("Page.handleJavaScriptDialog", {"accept": True},
                      session=event.get("sessionId"))

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("the browser did not answer")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def _fds(read_end: int, write_end: int):
    def arrange() -> None:  # in the child, before exec: put the pipe ends on fds 3 and 4
        # through fds above both, in case one end already sits on 3 or 4
        high_read, high_write = os.dup(read_end), os.dup(write_end)
        os.dup2(high_read, 3)
        os.dup2(high_write, 4)
    return arrange


_IMAGES = ("JSON.stringify([...document.images].map(i => ({src: i.src.slice(0, 30), "
           "complete: i.complete, naturalWidth: i.naturalWidth, "
           "naturalHeight: i.naturalHeight})))")


def required():
    """This module when chromium is on PATH; otherwise a skip, or a failure where CI demands
    the browser (DESCENTLAB_REQUIRE_CHROMIUM=1)."""
    import sys

    import pytest

    if chromium() is None:
        if os.environ.get("DESCENTLAB_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (DESCENTLAB_REQUIRE_CHROMIUM=1) but not on PATH")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return sys.modules[__name__]


def open_page(url: str, binary: str | None = None, settle_s: float = 0.5) -> Page:
    binary = binary or chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH")
    profile = tempfile.mkdtemp(prefix="descentlab-chromium-")  # a fresh --user-data-dir
    browser = _Browser(binary, profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired")
        time.sleep(settle_s)  # late console messages
        images = json.loads(browser.send(
            "Runtime.evaluate", {"expression": _IMAGES, "returnByValue": True},
            session=session)["result"]["value"])
        title = browser.send("Runtime.evaluate", {"expression": "document.title",
                                                  "returnByValue": True},
                             session=session)["result"]["value"]
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
        page = Page(images, title=title, screenshot=base64.b64decode(shot["data"]))
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                               "assert"):
                page.errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                            for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                page.errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                page.errors.append(params["entry"]["text"])
            elif method == "Page.javascriptDialogOpening":
                page.dialogs.append(params.get("message", ""))
        return page
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
