"""Screenshots of the Prefect UI over a running demo, for docs/operations.md: the run list, a synced run, a
dead-lettered run and a batch run (each with its Artifacts tab where it has one), taken by headless Chromium (Debian's `chromium` package).

    make demo ARGS=--keep-running            # in one shell; wait for "ERP check passed"
    .venv/bin/python -m erpsync_dev.screenshots --out docs/screenshots   # in another

The runs are found through Prefect's REST API (the newest of each kind), so the pictures show whatever the demo
just did; nothing in them is customer data (the demo's orders are generated).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

DEFAULT_UI = "http://127.0.0.1:4200"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Long enough for the UI's own API calls to answer and the page to settle (virtual time: no real wait).
SETTLE_MS = 20_000


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no headless browser: install Debian's chromium (apt-get install chromium)")


def runs(api: str, flow_name: str, state: str | None = None, limit: int = 1) -> list[dict]:
    """The newest runs of ``flow_name`` (in ``state``, a state type such as COMPLETED or FAILED)."""
    body: dict = {"flows": {"name": {"any_": [flow_name]}}, "sort": "START_TIME_DESC", "limit": limit}
    if state:
        body["flow_runs"] = {"state": {"type": {"any_": [state]}}}
    response = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def artifacts(api: str, flow_run_id: str, key: str) -> list[dict]:
    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": [key]}}, "limit": 1}
    response = httpx.post(f"{api}/artifacts/filter", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def shoot(chromium: str, url: str, out: Path, size: str = "1440,1000") -> None:
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={size}", f"--virtual-time-budget={SETTLE_MS}", f"--screenshot={out}", url],
                   check=True, capture_output=True, timeout=120)
    print(f"{out}  ← {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erpsync_dev.screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ui", default=DEFAULT_UI, help="the Prefect UI of the running demo (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"),
                        help="folder for the PNG files (default: %(default)s)")
    args = parser.parse_args(argv)
    api = args.ui.rstrip("/") + "/api"
    try:
        httpx.get(f"{api}/health", timeout=5).raise_for_status()
    except httpx.HTTPError:
        print(f"no Prefect API at {api}: start the demo with make demo ARGS=--keep-running", file=sys.stderr)
        return 2
    chromium = browser()
    args.out.mkdir(parents=True, exist_ok=True)
    shots = [("run-list.png", f"{args.ui}/runs")]
    for name, flow, state in (("synced-run.png", "sync-event", "COMPLETED"),
                              ("dead-lettered-run.png", "sync-event", "FAILED"),
                              ("batch-run.png", "sync-batch", "COMPLETED")):
        found = runs(api, flow, state)
        if not found:
            print(f"no {state.lower()} {flow} run yet: {name} skipped", file=sys.stderr)
            continue
        url = f"{args.ui}/runs/flow-run/{found[0]['id']}"
        shots.append((name, url))
        # The dead letter's cause, and the batch's table of events: each artifact has a page of its own.
        for key in {"FAILED": ("dead-letter",), "sync-batch": ("sync-batch-events",)}.get(
                "sync-batch" if flow == "sync-batch" else state, ()):
            for artifact in artifacts(api, found[0]["id"], key):
                shots.append((f"{key}-artifact.png", f"{args.ui}/artifacts/artifact/{artifact['id']}"))
    for name, url in shots:
        shoot(chromium, url, args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
