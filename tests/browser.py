"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
no websocket library, no port, nothing but the standard library and Debian's ``chromium``.

Chromium reads commands from file descriptor 3 and writes replies and events to descriptor 4,
each message one JSON object followed by a NUL byte. ``Browser`` opens one page, attaches to it
(flat sessions), and keeps every console message and uncaught exception it sees.

Used by the leaderboard page's browser test, and runnable to measure a page::

    python tests/browser.py results/digits-cnn/report/report.html --screenshot /tmp/report.png
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-first-run",
         "--no-default-browser-check", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe")
WIDTH, HEIGHT = 1400, 900


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page attached; use as a context manager."""

    def __init__(self, executable: str, width: int = WIDTH, height: int = HEIGHT, timeout: float = 60.0):
        self.timeout = timeout
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        to_child_read, self._write = os.pipe()
        self._read, from_child_write = os.pipe()

        def wire() -> None:  # in the child: the protocol's descriptors are 3 (commands) and 4 (replies)
            commands, replies = os.dup(to_child_read), os.dup(from_child_write)  # out of the way of 3 and 4
            os.dup2(commands, 3)
            os.dup2(replies, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, close_fds=False)
        os.close(to_child_read)
        os.close(from_child_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def __enter__(self) -> "Browser":
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call("Browser.close", browser=True)
        except Exception:  # noqa: BLE001 - closing is best effort; the process is ended below
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- the protocol -------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._write, data):]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed the pipe (exit status {self.process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, browser: bool = False) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if not browser and self.session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        for index, seen in enumerate(self.events):
            if seen["method"] == event:
                return self.events.pop(index)
        while True:
            message = self._receive(deadline)
            if message.get("method") == event:
                return message
            if "method" in message:
                self.events.append(message)

    # -- what tests use -----------------------------------------------------------------------
    def open(self, url: str) -> None:
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        self.evaluate("0")  # drain events already sent
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def page_height(self) -> int:
        return int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))

    def screenshot(self, path: str | Path, full_page: bool = False, max_height: int = 16000) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            height = min(self.page_height(), max_height)
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1})
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        path = Path(path)
        path.write_bytes(data)
        return path


def main(argv: list[str]) -> int:
    """Print a page's height at 1400 px, where its first collapsed block starts, and its console errors."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--full-page", action="store_true")
    args = parser.parse_args(argv)
    executable = find_chromium()
    if executable is None:
        print("no chromium found", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with Browser(executable) as browser:
        browser.open(args.page.resolve().as_uri())
        loaded = time.perf_counter() - start
        height = browser.page_height()
        first = browser.evaluate("(() => { const d = document.querySelector('details');"
                                 " return d ? Math.round(d.getBoundingClientRect().top + scrollY) : null; })()")
        print(json.dumps({"page": str(args.page), "width": WIDTH, "height_px": height,
                          "screens": round(height / HEIGHT, 2), "first_details_px": first,
                          "screens_above_details": round(first / HEIGHT, 2) if first else None,
                          "load_s": round(loaded, 2), "errors": browser.errors()}))
        if args.screenshot:
            browser.screenshot(args.screenshot, full_page=args.full_page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
