"""A minimal W3C WebDriver client for headless Chromium (``chromium`` + ``chromium-driver``).

No selenium dependency: chromedriver speaks JSON over HTTP, and the tearsheet test needs only
"open a file, run a script, read the console log".
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from grodt.test_kit.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless flags that keep Chromium off the (closed) network: no background fetches,
# component updates, sync or QUIC probes.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1024",
)


def find_binaries() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    driver = shutil.which("chromedriver") or (
        CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else None
    )
    if chromium and driver:
        return chromium, driver
    return None


def install_chromium(timeout: float = 600.0) -> str | None:
    """Install the Debian packages as root; returns None on success, else the reason."""
    if find_binaries():
        return None
    if os.geteuid() != 0:
        return "chromium/chromedriver are not installed and the suite is not running as root"
    if shutil.which("apt-get") is None:
        return "chromium/chromedriver are not installed and apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "chromium",
            "chromium-driver",
        ],
        ["apt-get", "update", "-qq"],
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "chromium",
            "chromium-driver",
        ],
    ):
        if args[1] == "install" and find_binaries():
            break
        try:
            result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(args)}` timed out"
        if result.returncode != 0 and args[1] == "update":
            return f"apt-get update failed: {result.stderr.strip()[-300:]}"
    return None if find_binaries() else "apt-get could not install chromium and chromium-driver"


class Browser:
    """One headless Chromium session driven through chromedriver."""

    def __init__(self, chromium: str, driver: str) -> None:
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="grodt-chromium-")
        self.driver = subprocess.Popen(
            [driver, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.1)
        capabilities = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:loggingPrefs": {"browser": "ALL"},
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [*CHROMIUM_ARGS, f"--user-data-dir={self.profile}"],
                    },
                },
            },
        }
        self.session = self._call("POST", "/session", capabilities)["sessionId"]

    def _call(self, method: str, path: str, payload: dict | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                body = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"webdriver {method} {path}: {e.read().decode()[:500]}") from None
        value = body.get("value", body)
        return value

    def open(self, path: Path) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": Path(path).as_uri()})

    def run(self, script: str) -> Any:
        return self._call(
            "POST",
            f"/session/{self.session}/execute/sync",
            {"script": script, "args": []},
        )

    def console(self) -> list[dict]:
        return self._call("POST", f"/session/{self.session}/se/log", {"type": "browser"})

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._call("DELETE", f"/session/{self.session}")
        except (RuntimeError, urllib.error.URLError, ConnectionError):
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


CHART_PROBE = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (div) {
  var traces = (div._fullData || []).filter(function (t) { return t.visible !== false; });
  var paths = div.querySelectorAll('.scatterlayer path.js-line, .scatterlayer path.js-fill');
  var lines = Array.from(paths)
      .filter(function (p) { return (p.getAttribute('d') || '').length > 10; }).length;
  var bars = div.querySelectorAll('.barlayer g.point path').length;
  var images = div.querySelectorAll('.heatmaplayer image, g.hm image').length;
  return {id: div.id, traces: traces.length, svg: div.querySelectorAll('svg.main-svg').length,
          lines: lines, bars: bars, images: images,
          width: div.getBoundingClientRect().width, height: div.getBoundingClientRect().height};
});
"""
