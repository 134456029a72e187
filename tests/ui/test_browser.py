"""The dashboard in a real browser: Debian's Chromium driven by Playwright against
`streamlit run app.py` on 127.0.0.1. Only what a browser can show is checked here: the form
launches a search, the live page refreshes itself, charts (the indicator panel included) and the
cell DAG are drawn, the run can be stopped, stopping the server ends its searches cleanly, and
the first request to a fresh server shows DARTboard's navigation, never Streamlit's own page list.

Set DARTBOARD_SCREENSHOT=path/to/file.png to also keep the live page's screenshot there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from darts_engine.runs.states import RunState
from darts_engine.runs.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--enable-unsafe-swiftshader", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                       "(apt-get install chromium; .ci/run does this)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


def start_server(home: Path, port: int, log) -> subprocess.Popen:
    """`streamlit run app.py` on 127.0.0.1:port with its own run store, in its own process
    group: os.killpg(proc.pid, SIGINT) is what Ctrl-C in its terminal sends."""
    env = dict(os.environ, DARTBOARD_HOME=str(home), OMP_NUM_THREADS="1",
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextmanager
def chromium_page(home: Path, log_path: Path) -> Iterator[tuple[Any, int]]:
    """A dashboard server on `home` and one Chromium page (1400×1100): (page, port); both are
    closed afterwards."""
    from playwright import sync_api

    port = free_port()
    with log_path.open("w") as log:
        proc = start_server(home, port, log)
        try:
            with sync_api.sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
                try:
                    yield browser.new_page(viewport={"width": 1400, "height": 1100}), port
                finally:
                    browser.close()
        finally:
            stop_server(proc)


@pytest.fixture
def server(tmp_path):
    """`streamlit run app.py` on a free port with its own run store; killed afterwards."""
    port, home = free_port(), tmp_path / "runs"
    with (tmp_path / "server.log").open("w") as log:
        proc = start_server(home, port, log)
        try:
            yield f"http://127.0.0.1:{port}", home, proc
        finally:
            stop_server(proc)


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text(timeout=20_000)


def epochs_done(page) -> int:
    return int(re.match(r"\s*(\d+)", metric(page, "Epoch")).group(1))


def status(page):
    return page.locator('[data-testid="stMetric"]').filter(has_text="Status")


def assert_follows_latest(page, expect, live: bool) -> None:
    """"Follow latest" is ticked and stays so over three refreshes; on the live page the
    heatmap shows the newest α snapshot each time."""
    follow = page.get_by_role("checkbox", name="Follow latest")
    expect(follow).to_be_checked(timeout=30_000)
    for _ in range(3):
        page.wait_for_timeout(1_500)
        if live:
            caption = page.get_by_text(re.compile(r"^Snapshot \d+ of \d+")).first.inner_text()
            shown, latest = map(int, re.match(r"Snapshot (\d+) of (\d+)", caption).groups())
            assert shown == latest, caption
    expect(follow).to_be_checked()


def launch_quick_look(page, expect, url: str, epochs: int) -> str:
    """From the launch form: the quick-look preset, made smaller (128 images, C=4) and `epochs`
    long; Start; the run id of the live page it opens."""
    page.goto(url)
    expect(page.get_by_text("Launch a search")).to_be_visible(timeout=60_000)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").click()
    page.get_by_role("option", name="Quick look (seconds)").click()
    expect(page.get_by_role("listbox")).to_have_count(0)
    expect(page.get_by_label("epochs", exact=True)).to_have_value("5")
    for field, value in (("epochs", str(epochs)), ("data_limit", "128"),
                         ("init_channels", "4")):
        box = page.get_by_label(field, exact=True)
        box.fill(value)
        box.press("Tab")
    page.keyboard.press("Escape")  # no popover may stay open over the form
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r".*/live\?run="))
    return re.search(r"run=([\w-]+)", page.url).group(1)


def test_launch_watch_and_stop_in_chromium(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    expect, sync_playwright = sync_api.expect, sync_api.sync_playwright

    url, home, proc = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            # A tiny search from the form: 100 epochs of ~0.3 s, still running when Stop is
            # clicked, with every live panel drawing.
            run_id = launch_quick_look(page, expect, url, epochs=100)

            # The live page refreshes by itself: the epoch counter moves without a reload.
            first = epochs_done(page)
            deadline = time.monotonic() + 60
            while epochs_done(page) < max(2, first + 1):
                assert time.monotonic() < deadline, "the live page did not reach 2 epochs"
                page.wait_for_timeout(500)
            # "Follow latest" starts ticked and stays so: refresh after refresh, the heatmap
            # shows the newest α snapshot.
            assert_follows_latest(page, expect, live=True)
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            expect(page.locator('[data-testid="stGraphVizChart"] svg').first).to_be_visible()
            expect(page.locator('[data-testid="stGraphVizChart"] svg g.edge').first
                   ).to_be_attached()
            shot = tmp_path / "live.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if target := os.environ.get("DARTBOARD_SCREENSHOT"):
                shutil.copy(shot, target)

            page.get_by_role("button", name="Stop").click()
            expect(status(page)).to_contain_text(re.compile("stopped|completed"))
            stopped = RunStore(home).get_run(run_id)
            assert stopped["status"] in ("stopped", "completed") and stopped["epochs_done"] >= 2

            # The collapse-indicator panel, once the run no longer refreshes: its heading and a
            # small-multiples figure drawn by plotly.
            expect(page.get_by_role("heading", name="Collapse indicators")).to_be_visible()
            panel = page.locator('[class*="st-key-live_indicator_panel"] .js-plotly-plot').first
            expect(panel).to_be_visible()
            expect(panel.locator("path.js-line").first).to_be_attached()
            expect(panel.locator("g.annotation", has_text="skip_connect mass").first
                   ).to_be_attached()

            # Resume it from its checkpoint, then stop the server while it runs.
            if stopped["status"] == "stopped":
                page.get_by_role("button", name="Resume").click()
                expect(status(page)).to_contain_text("running")
        finally:
            browser.close()

    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)
    # The server's run manager stopped the search between two steps and left it resumable.
    final = RunStore(home).get_run(run_id)["status"]
    assert final in (("interrupted", "completed") if stopped["status"] == "stopped"
                     else ("completed",))
    assert all(RunState(s).final for s in RunStore(home).list_runs()["status"])


@pytest.mark.parametrize("page_name", ["live", "compare"])
def test_a_page_url_as_the_first_request_opens_inside_the_app(server, page_name):
    # After a restart, a bookmarked /live?run=... is the server's first request. Streamlit then
    # runs pages/live.py on its own (legacy pages-directory mode: no app.py, every file in
    # pages/ listed in a sidebar) unless the page hands over to app.py's navigation.
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    url, home, _ = server
    # Two runs the CLI started and that are still running, so the page refreshes itself.
    clis = [subprocess.Popen(
        [sys.executable, "-m", "darts_engine", "search", "--dataset", "shapes", "--data-limit",
         "128", "--space", "nb201", "--init-channels", "4", "--cells", "1", "--batch-size", "32",
         "--epochs", "500", "--threads", "1", "--algorithm", algorithm, "--name", algorithm],
        cwd=ROOT, env=dict(os.environ, DARTBOARD_HOME=str(home)), stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT) for algorithm in ("bilevel-1st", "single")]
    try:
        deadline = time.monotonic() + 60
        while len(runs := RunStore(home).list_runs()) < 2 or runs["epochs_done"].min() < 1:
            assert time.monotonic() < deadline, "the CLI runs did not start"
            assert all(c.poll() is None for c in clis), "a CLI run ended early"
            time.sleep(0.5)
        ids = runs["id"].tolist()
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         headless=True)
            try:
                # tall enough that "Follow latest" is on screen at once (the case that failed)
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                page.goto(f"{url}/live?run={ids[0]}" if page_name == "live"
                          else f"{url}/compare?runs={','.join(ids)}")
                nav = page.get_by_role("navigation")
                sync_api.expect(nav.get_by_text("Runs")).to_be_visible(timeout=60_000)
                sync_api.expect(page.get_by_role("heading", name=page_name.title())
                                ).to_be_visible(timeout=30_000)
                assert page_name in page.url
                assert page.get_by_text("common", exact=True).count() == 0
                assert page.locator('[data-testid="stSidebarNav"]').count() == 0
                # "Follow latest" stays ticked, refresh after refresh (the live heatmap on the
                # newest snapshot): after the hand-over it once came back unticked.
                assert_follows_latest(page, sync_api.expect, live=page_name == "live")
            finally:
                browser.close()
    finally:
        for c in clis:
            c.send_signal(signal.SIGINT)
        for c in clis:
            c.wait(30)


def test_ctrl_c_restart_and_resume_in_chromium(server, tmp_path):
    """A new user's round: start a search from the form, Ctrl-C the server, start it again on
    the same port: the run is "interrupted"; Resume on the Runs page continues it from its
    checkpoint, and it completes with every epoch once."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    expect, sync_playwright = sync_api.expect, sync_api.sync_playwright

    url, home, proc = server
    store = RunStore(home)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            run_id = launch_quick_look(page, expect, url, epochs=20)

            # Ctrl-C once an epoch (and so its checkpoint) is recorded.
            deadline = time.monotonic() + 60
            while store.get_run(run_id)["epochs_done"] < 1:
                assert time.monotonic() < deadline, "no epoch within 60 s"
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(30) == 0
            cut = store.get_run(run_id)
            assert cut["status"] == "interrupted" and 1 <= cut["epochs_done"] < 20

            with (tmp_path / "server-2.log").open("w") as log:
                again = start_server(home, int(url.rsplit(":", 1)[1]), log)
                try:
                    page.goto(f"{url}/runs")
                    page.get_by_role("button", name="Resume").click(timeout=60_000)
                    expect(page.get_by_role("button", name="Stop")).to_be_visible()
                    # Queued by this server now: the page's orphan check leaves it alone.
                    assert store.get_run(run_id)["status"] in ("queued", "running", "completed")
                    deadline = time.monotonic() + 120
                    while (run := store.get_run(run_id))["status"] != "completed":
                        assert run["status"] in ("queued", "running"), run
                        assert time.monotonic() < deadline, f"resumed run did not complete: {run}"
                        time.sleep(0.2)
                finally:
                    stop_server(again)
            epochs = store.epoch_metrics(run_id)["epoch"].tolist()
            assert epochs == list(range(20))  # continued: no gap, no repeat
            steps = store.step_metrics(run_id)["step"].tolist()
            assert steps == list(range(1, len(steps) + 1))
        finally:
            browser.close()
            store.close()


# Records, from the first paint on, whether Streamlit's automatic page list (one link per file
# in pages/, "app" and "common" among them) was ever in the DOM, however briefly, and whether
# DARTboard's "Starting DARTboard…" state was shown.
AUTO_NAV_WATCH = """
window.__autoNav = [];
window.__sawStarting = false;
new MutationObserver(() => {
  if (document.body && document.body.innerText.includes("Starting DARTboard")) {
    window.__sawStarting = true;
  }
  if (document.querySelector('[data-testid="stSidebarNav"]')) {
    window.__autoNav.push("stSidebarNav");
  }
  for (const a of document.querySelectorAll("a")) {
    const text = a.innerText.trim();
    if (text === "common" || text === "app") window.__autoNav.push("link " + text);
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def test_cold_start_shows_the_app_navigation_never_the_automatic_page_list(server):
    # The first request to a freshly started server: until the first script run has called
    # st.navigation, Streamlit shows the pages/ directory as a page list unless
    # client.showSidebarNavigation is false; the Launch page's Start button must then follow.
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    url, _, _ = server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.add_init_script(AUTO_NAV_WATCH)
            page.goto(url, wait_until="commit")
            start = page.get_by_role("button", name="Start")
            deadline = time.monotonic() + 60
            while not start.is_visible():
                assert time.monotonic() < deadline, "no Start button within 60 s"
                assert page.locator('[data-testid="stSidebarNav"]').count() == 0
                for name in ("common", "app"):
                    assert page.get_by_role("link", name=name, exact=True).count() == 0, name
                page.wait_for_timeout(50)
            assert page.evaluate("window.__autoNav") == []
            assert page.evaluate("window.__sawStarting")
            nav = page.get_by_role("navigation")
            sync_api.expect(nav.get_by_text("Launch", exact=True)).to_be_visible()
        finally:
            browser.close()


def test_live_draws_the_truth_curve_with_its_protocol_in_chromium(tmp_path, monkeypatch):
    # $DARTBOARD_TRUTH names a small synthetic CSV holding every cell a recorded NB201 search
    # derived; the Live page's truth figure must be drawn, protocol note and curves, by plotly.
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    from tests.helpers import record, tiny, truth_csv

    home = tmp_path / "runs"
    store = RunStore(home)
    run_id = record(store, tiny(epochs=2), "truth")
    archs = dict.fromkeys(store.genotypes(run_id)["genotype"])
    store.close()
    csv = truth_csv(tmp_path / "nb201.csv", {a: {"cifar10": 60.0 + k, "cifar100": 30.0 + k,
                                                 "ImageNet16-120": 10.0 + k}
                                             for k, a in enumerate(archs)})
    monkeypatch.setenv("DARTBOARD_TRUTH", str(csv))
    monkeypatch.setenv("DARTBOARD_DATA", str(tmp_path))
    with chromium_page(home, tmp_path / "server.log") as (page, port):
        page.goto(f"http://127.0.0.1:{port}/live?run={run_id}")
        chart = page.locator('[data-testid="stPlotlyChart"]').filter(
            has_text="true test accuracy: NAS-Bench-201, 200 epochs, mean of 3 seeds")
        chart.scroll_into_view_if_needed(timeout=60_000)
        sync_api.expect(chart).to_be_visible(timeout=30_000)
        # one line per dataset and the supernet's, each with points drawn
        lines = chart.locator(".scatterlayer .trace path.js-line")
        sync_api.expect(lines).to_have_count(4, timeout=30_000)
        assert all(len(d or "") > 5 for d in (
            lines.nth(i).get_attribute("d") for i in range(4)))


def test_sweep_page_draws_the_phase_diagram_and_a_cell_opens_compare_in_chromium(tmp_path):
    # A finished 2 × 2 sweep (one seed) recorded before the server starts; its Sweep page must
    # draw the heatmap in plotly, and clicking a cell must open that cell's run on Compare.
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    from darts_engine.runs.manager import RunManager
    from darts_engine.runs.sweep import SweepSpec, launch_sweep
    from tests.helpers import tiny

    home = tmp_path / "runs"
    store = RunStore(home)
    mgr = RunManager(store, max_concurrent=2, threads_per_run=1)
    try:
        sweep_id = launch_sweep(mgr, SweepSpec(tiny().to_dict(), {
            "arch_lr": [3e-4, 3e-3], "arch_weight_decay": [0.0, 1e-2]}, seeds=[0]), "grid")
        runs = store.sweep_runs(sweep_id)
        for run_id in runs["id"]:
            mgr.wait(run_id, timeout=120)
    finally:
        mgr.shutdown(60)
    assert (store.sweep_runs(sweep_id)["status"] == "completed").all()
    store.close()
    with chromium_page(home, tmp_path / "server.log") as (page, port):
        page.goto(f"http://127.0.0.1:{port}/sweep?sweep={sweep_id}")
        chart = page.locator('[class*="st-key-sweep_phase"] .js-plotly-plot')
        chart.scroll_into_view_if_needed(timeout=60_000)
        sync_api.expect(chart).to_be_visible(timeout=30_000)
        # the heatmap trace, and its four cells' values written on it
        sync_api.expect(chart.locator("g.hm").first).to_be_attached(timeout=30_000)
        sync_api.expect(chart.locator("g.hm image, g.hm rect").first
                        ).to_be_attached()
        cell = chart.locator(".scatterlayer .trace").first.locator(
            "path.point").first
        sync_api.expect(cell).to_be_attached()
        cell.click(force=True)
        page.wait_for_url(re.compile(r".*/compare\?runs="), timeout=30_000)
        opened = re.search(r"runs=([\w,-]+)", page.url).group(1).split(",")
        assert len(opened) == 1 and opened[0] in set(runs["id"])


def test_live_draws_an_sr_runs_image_strip_in_chromium(tmp_path, monkeypatch):
    # A recorded trilevel SR search: Live must show the four pictures of the image strip (LR,
    # bicubic, SR, HR) as decoded images, with their PSNR captions, and the derived network.
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    from darts_engine import SearchConfig
    from darts_engine.tasks.sisr import SR_CPU_PRESET
    from darts_engine.train.presets import preset_values
    from tests.helpers import record

    home = tmp_path / "runs"
    store = RunStore(home)
    cfg = SearchConfig.from_dict({**preset_values(SR_CPU_PRESET), "epochs": 1,
                                  "patches_per_epoch": 32, "init_channels": 8, "lr_patch": 12,
                                  "batch_size": 8, "warmup_epochs": 0, "device": "cpu",
                                  "threads": 1})
    run_id = record(store, cfg, "sr")
    store.close()
    monkeypatch.setenv("DARTBOARD_DATA", str(tmp_path))
    with chromium_page(home, tmp_path / "server.log") as (page, port):
        page.goto(f"http://127.0.0.1:{port}/live?run={run_id}")
        strip = page.locator('[data-testid="stImage"] img')
        strip.first.scroll_into_view_if_needed(timeout=60_000)
        sync_api.expect(strip).to_have_count(4, timeout=30_000)
        for i in range(4):   # decoded, at the enlarged size (48 px × zoom 4)
            sync_api.expect(strip.nth(i)).to_be_visible(timeout=30_000)
            width = strip.nth(i).evaluate("img => img.naturalWidth")
            assert width == 48 * 4, width
        captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
        assert [c.split(" · ")[0] for c in captions] == [
            "LR (pixels repeated)", "bicubic", "SR (supernet)", "HR"], captions
        sync_api.expect(page.get_by_text("network: depth_").first).to_be_visible(
            timeout=30_000)


def test_guide_draws_its_formulas_without_a_katex_error_in_chromium(tmp_path):
    # st.markdown's KaTeX shows a $$ block that spans source lines as raw TeX in red (and the
    # prose after it with it); AppTest sees only the markdown source, so only a browser can tell.
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    with chromium_page(tmp_path / "runs", tmp_path / "server.log") as (page, port):
        page.goto(f"http://127.0.0.1:{port}/guide")
        sync_api.expect(page.get_by_role("heading", name="Why it collapses")
                        ).to_be_visible(timeout=90_000)
        formulas = page.locator(".katex-display")
        sync_api.expect(formulas.first).to_be_visible(timeout=30_000)
        assert formulas.count() >= 2, "the mixed-op and the bi-level formulas are drawn"
        assert page.locator(".katex-error").count() == 0
        # The prose right after the first formula is rendered markdown, not TeX source.
        assert page.get_by_text("is its architecture", exact=False).count() == 1
        assert "\\frac" not in page.locator("main").inner_text()


def test_an_alerts_guide_link_opens_the_guides_alerts_section_in_chromium(tmp_path):
    # The alert badge on Live says where the rule is explained; the link opens the Guide in a new
    # tab (Streamlit's markdown links do; Live keeps running) scrolled to its Alerts section.
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(tests/requirements.txt)")
    from tests.helpers import record, tiny

    home = tmp_path / "runs"
    store = RunStore(home)
    run_id = record(store, tiny(epochs=1, alert_pf_mass=0.1, alert_skip_count=0), "alerted")
    assert len(store.alerts(run_id)), "the run fired no alert"
    store.close()
    with chromium_page(home, tmp_path / "server.log") as (page, port):
        page.goto(f"http://127.0.0.1:{port}/live?run={run_id}")
        link = page.get_by_role("link", name="see the Guide").first
        link.scroll_into_view_if_needed(timeout=90_000)
        with page.context.expect_page() as opened:
            link.click()
        guide = opened.value
        guide.wait_for_load_state()
        assert guide.url.endswith("/guide#alerts"), guide.url
        sync_api.expect(guide.get_by_role("heading", name="Alerts")).to_be_in_viewport(
            timeout=60_000)
        assert guide.get_by_text("DARTS+: ranking stable").count() >= 1   # the rules are listed
