"""A screenshot of the MLflow UI with a sweep's labelled-frames conditions side by side.

    python -m tools.mlflow_screenshot [--tracking-uri sqlite:///mlruns/mlflow.db]
        [--experiment synthetic_clinical] [--sweep latest|<parent run id>]
        [--out reports/mlflow_ui.png] [--port 0] [--view table|compare] [--size 1600x640]
        [--metrics mae_test_px,...]

Starts ``mlflow ui`` (this venv's) on 127.0.0.1 over the store, opens a page in headless Chromium,
saves a PNG and always stops the server again. The pages (hash routes of MLflow 3.17's React UI):

* ``table`` (default): the experiment's runs table, ``/#/experiments/<id>/runs?searchFilter=
  attributes.run_id IN (...)&orderByKey=attributes.start_time&orderByAsc=true``, one row per
  condition and one column per MAE metric. MLflow keeps the chosen columns in the browser's
  localStorage, not in the URL, so they are written there before the page is opened (a fresh
  Chromium profile each time; the MLflow store is only read).
* ``compare``: MLflow's compare-runs page, ``/#/compare-runs?runs=[<run ids>]&experiments=[<id>]``.
  Its metric table is a small scrolled box listing every metric alphabetically, so with the ~100
  metrics of a real sweep the MAE rows are not in view; fine for stores with few metrics.

Chromium is driven by Selenium through Debian's chromedriver (``apt-get install chromium
chromium-driver``, or ``make browser``), so the script waits until the runs are on the page instead
of guessing a time budget, and ``render`` returns the page's text. Both programs are found on PATH;
Selenium Manager, which would download a driver, is never used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from omegaconf import OmegaConf
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.wait import WebDriverWait

from src.errors import DataError
from src.params import composed
from src.tracking.queries import collect_runs, find_sweep, open_experiment

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


METRICS = [
    "mae_train_px",
    "mae_test_px",
    "mae_test_pcutoff0.8_px",
    "mae_generalisation_px",
    "mae_generalisation_pcutoff0.8_px",
]


SIZE = (1600, 640)


# localStorage entries that keep MLflow's assistant side panel closed (it opens itself on a first
# visit)
CLOSED_ASSISTANT = {
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
}


class ScreenshotError(RuntimeError):
    """Something outside the data went wrong (no Chromium, server or page did not come up); one
    line, with a fix."""


INSTALL = "install them: `sudo apt-get install chromium chromium-driver` (or `make browser`)"


def chromium() -> tuple[str, str]:
    """Paths of the Chromium executable and of its chromedriver."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in [("chromium", browser), ("chromedriver", driver)] if not path]
    if missing:
        verb = "are" if len(missing) > 1 else "is"
        raise ScreenshotError(f"{' and '.join(missing)} {verb} not installed; {INSTALL}.")
    return browser, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, with whatever it started (SIGTERM, then
    SIGKILL)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def start_ui(tracking_uri: str, port: int = 0, timeout: float = 60):
    """Run ``mlflow ui`` over the store on 127.0.0.1:``port`` (0: a free one); yields its base URL,
    then stops it.

    Its output goes to a temporary log, kept (and named in the error) only when the server does not
    come up.
    """
    args = ["--backend-store-uri", tracking_uri]
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        if not db.is_file():  # mlflow would create an empty store there
            raise DataError(
                f"the MLflow store {tracking_uri} does not exist; run the sweep first: "
                "`python -m src.train +sweep=frames`."
            )
        # only for experiments created through the UI; existing runs keep their artifact locations
        args += ["--default-artifact-root", str(db.resolve().parent / "artifacts")]
    port = port or _free_port()
    log_fd, log_path = tempfile.mkstemp(prefix="mlflow-ui-", suffix=".log")
    # a viewer: no telemetry, no background job runner (its periodic tasks could write to the store)
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            *args,
            "--no-serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    os.close(log_fd)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not _answers(f"{base}/health"):
            if server.poll() is not None:
                raise ScreenshotError(
                    f"`mlflow ui` exited with status {server.returncode}; see {log_path}."
                )
            if time.monotonic() > deadline:
                raise ScreenshotError(
                    f"`mlflow ui` did not answer on {base}/health within {timeout:g} s; "
                    f"see {log_path} (pass another --port if {port} is taken)."
                )
            time.sleep(0.25)
    except BaseException:
        _stop(server)
        raise
    try:
        yield base
    finally:
        _stop(server)
        os.unlink(log_path)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def compare_runs_url(base: str, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow's compare-runs page for ``run_ids``:
    ``<base>/#/compare-runs?runs=[...]&experiments=[...]``."""
    runs, experiments = (
        json.dumps(ids, separators=(",", ":")) for ids in (list(run_ids), [str(experiment_id)])
    )
    return f"{base}/#/compare-runs?runs={quote(runs, safe='')}&experiments={quote(experiments, safe='')}"


def runs_table_url(base: str, experiment_id: str, run_ids: list[str]) -> str:
    """The experiment's runs table showing only ``run_ids``, oldest first (the order a sweep runs
    them)."""
    query = {
        "searchFilter": "attributes.run_id IN ({})".format(", ".join(f"'{r}'" for r in run_ids)),
        "orderByKey": "attributes.start_time",
        "orderByAsc": "true",
    }
    return f"{base}/#/experiments/{experiment_id}/runs?{urlencode(query, quote_via=quote)}"


def table_columns(experiment_id: str, metrics: list[str], expand: list[str] = ()) -> dict[str, str]:
    """localStorage entries that make the runs table show ``metrics`` as columns, expand the parent
    runs ``expand`` (so their children, the conditions, are visible) and keep the assistant panel
    closed."""
    columns = [f"metrics.`{m}`" for m in metrics]
    state = {
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": {c: max(160, 8 * len(m) + 24) for c, m in zip(columns, metrics)},
        "runsExpanded": {run_id: True for run_id in expand},
    }
    key = f"MLflowLocalStorage-1.1-ExperimentPage-{json.dumps([str(experiment_id)])}-ReactComponentState"
    return {key: json.dumps(state), **CLOSED_ASSISTANT}


@contextlib.contextmanager
def _browser(size: tuple[int, int], timeout: float):
    """Headless Chromium under chromedriver in a fresh profile; yields the Selenium driver, then
    quits."""
    browser, driver_path = chromium()
    # Selenium Manager would download a driver; it is not run when the driver is given, and offline
    os.environ.setdefault("SE_OFFLINE", "true")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    window = f"--window-size={size[0]},{size[1]}"
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", window]:
        options.add_argument(flag)
    # its own session: Ctrl-C reaches this process only, which then quits the browser
    service = Service(executable_path=driver_path, popen_kw={"start_new_session": True})
    try:
        try:
            driver = webdriver.Chrome(options=options, service=service)
        except WebDriverException as error:
            raise ScreenshotError(
                f"chromium did not start under chromedriver: {_first_line(error)}; try "
                f"`{driver_path} --version` and `{browser} --headless --no-sandbox --screenshot "
                "about:blank` to see why."
            ) from None
        try:
            driver.set_page_load_timeout(timeout)
            # --window-size is the window's; headless Chromium keeps part of it for (invisible)
            # browser chrome, so grow the window until the page's viewport (what the screenshot
            # shows) is `size`
            inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
            driver.set_window_size(*(2 * want - got for want, got in zip(size, inner)))
            yield driver
        except WebDriverException as error:  # e.g. chromium crashed
            raise ScreenshotError(f"chromium failed: {_first_line(error)}") from None
        finally:
            with contextlib.suppress(WebDriverException, OSError):
                driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _first_line(error: WebDriverException) -> str:
    return (error.msg or type(error).__name__).strip().splitlines()[0]


def _goto(driver, url: str, timeout: float) -> None:
    """Navigate and wait until the new document has loaded."""
    try:
        driver.get(url)
    except TimeoutException:
        raise ScreenshotError(f"chromium did not load {url} within {timeout:g} s.") from None
    except WebDriverException as error:
        raise ScreenshotError(f"chromium could not open {url}: {_first_line(error)}") from None


TEXT = "return document.body ? document.body.innerText : ''"


def render(
    url: str,
    screenshot: str | Path | None = None,
    *,
    size: tuple[int, int] = SIZE,
    wait_for: list[str] = (),
    local_storage: dict[str, str] | None = None,
    timeout: float = 60,
) -> str:
    """Open ``url`` in headless Chromium and return the text the page shows
    (``document.body.innerText``).

    Waits until every string of ``wait_for`` is on the page and the text stops changing;
    ``local_storage`` is written for the URL's origin first; ``screenshot``: where to save a PNG of
    ``size`` (width, height).
    """
    with _browser(size, timeout) as driver:
        if local_storage:
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
            # any page of the origin, to reach its localStorage
            _goto(driver, f"{origin}/health", timeout)
            for key, value in local_storage.items():
                driver.execute_script(
                    "localStorage.setItem(arguments[0], arguments[1])", key, value
                )
        _goto(driver, url, timeout)
        seen = {"text": None, "missing": list(wait_for)}

        def steady(driver) -> bool:
            text, previous = driver.execute_script(TEXT), seen["text"]
            seen["text"], seen["missing"] = text, [s for s in wait_for if s not in text]
            return not seen["missing"] and text == previous

        try:
            WebDriverWait(driver, timeout, poll_frequency=0.5).until(steady)
        except TimeoutException:
            raise ScreenshotError(
                f"the page {url} did not show {seen['missing'] or 'a steady text'} within "
                f"{timeout:g} s; is the run id / experiment right?"
            ) from None
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            Path(screenshot).write_bytes(driver.get_screenshot_as_png())
        return seen["text"]


def capture(
    tracking_uri: str,
    experiment: str,
    sweep: str = "latest",
    out: str | Path = "reports/mlflow_ui.png",
    *,
    port: int = 0,
    view: str = "table",
    size: tuple[int, int] = SIZE,
    metrics: list[str] = METRICS,
) -> tuple[str, str]:
    """Screenshot the sweep's conditions side by side into ``out``; returns (page URL, text the page
    shows)."""
    client, experiment_id = open_experiment(
        OmegaConf.create({"tracking_uri": tracking_uri, "experiment": experiment})
    )
    parent = find_sweep(client, experiment_id, sweep)
    runs = collect_runs(client, experiment_id, parent.info.run_id)
    shown = [m for m in metrics if m in runs.columns]
    if not shown:
        raise DataError(
            f"the runs of sweep {parent.info.run_id} have none of the metrics {metrics}; "
            "choose others with --metrics."
        )
    run_ids, names = list(runs["run_id"]), list(runs["run_name"])
    chromium()  # fail before starting the server
    with start_ui(tracking_uri, port) as base:
        if view == "compare":
            url = compare_runs_url(base, experiment_id, run_ids)
            text = render(url, out, size=size, wait_for=names, local_storage=CLOSED_ASSISTANT)
        else:
            url = runs_table_url(base, experiment_id, run_ids)
            text = render(
                url,
                out,
                size=size,
                wait_for=names + shown,
                local_storage=table_columns(experiment_id, shown, expand=[parent.info.run_id]),
            )
    return url, text


def _size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.mlflow_screenshot", description=__doc__.splitlines()[0]
    )
    # Defaults: the current study's store and experiment (conf/ and its study file).
    study = composed()["mlflow"]
    parser.add_argument("--tracking-uri", default=study["tracking_uri"])
    parser.add_argument("--experiment", default=study["experiment"])
    parser.add_argument("--sweep", default="latest", help="latest, or a sweep's parent run id")
    parser.add_argument("--out", default="reports/mlflow_ui.png")
    parser.add_argument(
        "--port", type=int, default=0, help="port of the MLflow UI (default: a free one)"
    )
    parser.add_argument(
        "--view",
        choices=["table", "compare"],
        default="table",
        help="runs table with MAE columns, or MLflow's compare-runs page",
    )
    parser.add_argument(
        "--size", type=_size, default=SIZE, metavar="WxH", help="window size (default: 1600x640)"
    )
    parser.add_argument(
        "--metrics",
        type=lambda s: s.split(","),
        default=METRICS,
        help="metric columns of the table view, comma-separated",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up on `kill` too
    try:
        started = time.monotonic()
        url, _ = capture(
            args.tracking_uri,
            args.experiment,
            args.sweep,
            args.out,
            port=args.port,
            view=args.view,
            size=args.size,
            metrics=args.metrics,
        )
    except (DataError, ScreenshotError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # the server and Chromium are already stopped
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    print(f"wrote {args.out} in {time.monotonic() - started:.1f} s: {args.view} view of {url}")


if __name__ == "__main__":
    main()
