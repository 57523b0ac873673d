"""Headless Chromium driven over the Chrome DevTools Protocol (CDP) for browser tests.

Needs /usr/bin/chromium (Debian: apt-get install chromium; ``make test`` installs
it where it can). Tests skip, naming the reason, when it is absent.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests.webserver import free_port

CHROMIUM = "/usr/bin/chromium"


def chromium_missing_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (Debian: apt-get install chromium)"
    return None


class Browser:
    """One headless Chromium with one page; ``evaluate`` runs JavaScript in it and returns the value."""

    def __init__(self):
        import aiohttp

        self._aiohttp = aiohttp
        self.profile = tempfile.mkdtemp(prefix="notifier-chromium-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--remote-allow-origins=*", f"--remote-debugging-port={self.port}", f"--user-data-dir={self.profile}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.loop = asyncio.new_event_loop()
        self._ids = itertools.count(1)
        self.session = self.ws = None
        try:
            self.loop.run_until_complete(self._connect())
        except BaseException:
            self.close()
            raise

    async def _connect(self, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        page = None
        while page is None:
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited with {self.proc.returncode}")
            try:
                targets = httpx.get(f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
                page = next((t for t in targets if t.get("type") == "page"), None)
            except (httpx.HTTPError, ValueError):
                pass
            if page is None:
                if time.monotonic() > deadline:
                    raise AssertionError("chromium's DevTools endpoint did not come up")
                await asyncio.sleep(0.2)
        self.session = self._aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)

    async def _call(self, method: str, params: dict | None, timeout: float):
        call_id = next(self._ids)
        await self.ws.send_str(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type != self._aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"DevTools connection closed: {message.type}")
                data = json.loads(message.data)
                if data.get("id") == call_id:
                    if "error" in data:
                        raise AssertionError(f"{method}: {data['error']}")
                    return data.get("result", {})

    def call(self, method: str, params: dict | None = None, timeout: float = 30.0):
        return self.loop.run_until_complete(self._call(method, params, timeout))

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        try:
            if self.ws is not None:
                self.loop.run_until_complete(self.ws.close())
            if self.session is not None:
                self.loop.run_until_complete(self.session.close())
        finally:
            self.loop.close()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            shutil.rmtree(self.profile, ignore_errors=True)
