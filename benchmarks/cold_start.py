"""Seconds from `streamlit run app.py` to DARTboard on screen, on a fresh server each time.

    python benchmarks/cold_start.py [--runs 3]

Each run starts `streamlit run app.py` on a free port with its own empty run store and data
root (DARTBOARD_HOME, DARTBOARD_DATA in a temporary folder), opens that URL in headless
Chromium (Debian's, driven by Playwright) as soon as the server answers its health check, and
reports seconds from the server process's start to
  health: the server answering /_stcore/health (Python and Streamlit imported, listening);
  nav:   the first paint of DARTboard's own navigation ("Launch" in the top bar);
  start: the Launch page's Start button being visible.
The browser is started before the server, so its own launch is not counted. Numbers are
printed, never asserted. Target (issue 12): start <= 3 s on a 2-core machine. On a shared
machine, compare with `import torch` timed at the same moment (printed last): nav -> start is
mostly the engine's imports, torch first (see `python -X importtime -c "import pages.launch"`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-swiftshader", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
POLL_S = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
            return r.read().strip() == b"ok"
    except OSError:
        return False


def one_run(browser, tmp: Path, timeout: float = 120) -> tuple[float, float, float]:
    """Seconds from server start to health, to the nav's first paint, to the Start button."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DARTBOARD_HOME=str(tmp / "runs"), DARTBOARD_DATA=str(tmp / "data"),
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        deadline = t0 + timeout
        while not healthy(url):
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no health answer at {url} within {timeout} s")
            time.sleep(POLL_S)
        t_health = time.monotonic() - t0
        page.goto(url, wait_until="commit")
        nav = page.get_by_role("navigation").get_by_text("Launch", exact=True)
        start = page.get_by_role("button", name="Start")
        t_nav = None
        while True:
            now = time.monotonic()
            if t_nav is None and nav.is_visible():
                t_nav = now - t0
            if start.is_visible():
                return t_health, (t_nav if t_nav is not None else now - t0), now - t0
            if now > deadline:
                raise TimeoutError(f"no Start button within {timeout} s")
            page.wait_for_timeout(POLL_S * 1000)
    finally:
        page.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="fresh server starts to time")
    args = p.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("Debian's chromium is not installed (apt-get install chromium)")
    healths, navs, starts = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            for i in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="dartboard-cold-") as tmp:
                    t_health, t_nav, t_start = one_run(browser, Path(tmp))
                healths.append(t_health)
                navs.append(t_nav)
                starts.append(t_start)
                print(f"run {i + 1}: health {t_health:.2f} s, nav {t_nav:.2f} s, "
                      f"Start button {t_start:.2f} s", flush=True)
        finally:
            browser.close()
    print(f"median of {args.runs}: health {statistics.median(healths):.2f} s, "
          f"nav {statistics.median(navs):.2f} s, "
          f"Start button {statistics.median(starts):.2f} s (target <= 3 s)")
    t = time.monotonic()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    print(f"for scale, now: `import torch` in a fresh process {time.monotonic() - t:.2f} s")


if __name__ == "__main__":
    main()
