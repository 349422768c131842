"""Screenshots of the window mid-run on the simulated test stand (the README's picture).

    python -m gui.screenshot [--config config/run.yaml] [--output docs/gui_mid_run.png] [--events 8000]

Cools the simulated cryostat to its setpoint, ramps the HV, starts a run and, when about 60 % of its events
are in, saves the window with the histograms, then the scope and the cryostat views (`*_scope.png`,
`*_cryostat.png`). Then it stops the run and closes the window the normal way. Works without a display
(QT_QPA_PLATFORM=offscreen is set when none is available).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtWidgets import QApplication  # noqa: E402

from daq.run_context import RunState  # noqa: E402
from gui.app import make_window  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402


def wait(app: QApplication, condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshot: gave up waiting for {what} after {timeout_s:g} s")
        app.processEvents()
        time.sleep(0.02)


def take(window: MainWindow, app: QApplication, output: Path, events: int) -> list[Path]:
    stand = window.stand
    wait(app, lambda: stand.snapshot().temperature is not None, 20, "the first temperature")
    window.cryostat.go()
    wait(app, lambda: "stable at" in stand.snapshot().cryostat_sequence, 180, "a stable stage")
    window.hv_panel.confirm = lambda text: True  # the script is the operator
    window.hv_panel.switch_on()
    wait(app, lambda: "on at" in stand.snapshot().hv_sequence, 120, "the HV")
    window.run_panel.events.setValue(events)
    window.run_panel.start()
    wait(app, lambda: (s := stand.snapshot().run) is not None and s.counters.written >= 0.6 * events, 300,
         "60 % of the events")  # fmt: skip
    for _ in range(5):  # let every view catch up with the latest snapshot
        app.processEvents()
        time.sleep(0.12)
    saved = []
    for view, suffix in ((window.spectra, ""), (window.scope, "_scope"), (window.cryostat, "_cryostat")):
        window.views.setCurrentWidget(view)
        for _ in range(3):
            app.processEvents()
            time.sleep(0.12)
        path = output.with_name(output.stem + suffix + output.suffix)
        window.grab().save(str(path))
        saved.append(path)
    window.views.setCurrentWidget(window.spectra)
    stand.stop_run("screenshots taken")
    wait(app, lambda: stand.snapshot().run.state in (RunState.DONE, RunState.FAULT), 60, "the end of the run")
    return saved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/run.yaml")
    ap.add_argument("--output", default="docs/gui_mid_run.png")
    ap.add_argument("--events", type=int, default=8000)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = make_window(args.config)
    window.show()
    try:
        saved = take(window, app, Path(args.output), args.events)
    finally:
        window.close()
        wait(app, lambda: not window.isVisible(), 120, "the window's shutdown")
    for path in saved:
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
