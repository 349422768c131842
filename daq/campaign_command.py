"""`daq campaign --config scan.yaml [--resume]` and `daq campaign report DIR`: the command-line front end."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from daq.campaign import EXIT_OK, CampaignRunner
from daq.campaign_config import load_campaign
from daq.campaign_journal import Journal
from daq.campaign_report import write_report
from daq.campaign_setup import check_journal, keep_scan_copy, prepare
from daq.control_core import ControlCore


def run_campaign(scan_path: str, resume: bool, out: TextIO | None = None, report: bool = True) -> int:
    """Run (or resume) the campaign of `scan_path`, then write its report; return the exit code.

    0: every step done; 3: a step failed and on_failure is stop (or the report found nothing);
    130: interrupted (Ctrl-C / SIGTERM: the run in progress stops cleanly, the HV is made safe).
    """
    out = out or sys.stdout
    path = Path(scan_path)
    campaign = prepare(load_campaign(path), path)  # every check before an instrument is opened
    ControlCore.check_start(campaign.config)  # regions, output folder and free disk: before hours of cooling
    campaign.runs_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(campaign.directory)
    check_journal(campaign, journal, resume)
    keep_scan_copy(campaign)
    runner = CampaignRunner(campaign, journal, out)
    previous = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: object) -> None:
            runner.interrupt(f"{signal.Signals(signum).name} received")

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        code = runner.run()  # closes the stand (HV safe) before it returns
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"journal: {journal.path}", file=out)
    if report and code == EXIT_OK:
        text, json_path = write_report(campaign.directory, campaign.scan)
        print(text, file=out)
        print(f"report: {json_path} and {json_path.parent / 'ly_vs_temperature.png'} (.pdf)", file=out)
    return code


def report_campaign(directory: str, out: TextIO | None = None) -> int:
    """Write the report of the campaign in `directory` (finished or not) and print its LY(T) table."""
    out = out or sys.stdout
    text, json_path = write_report(Path(directory))
    print(text, file=out)
    print(f"report: {json_path}", file=out)
    return 0
