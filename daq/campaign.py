"""Run a temperature-scan campaign on the test stand's control core: setpoint, wait stable, HV, run, fit, journal.

The campaign drives `daq.stand.TestStand` through its public methods only. Each finished step is one line
of DIR/journal.jsonl (written with fsync before the next step starts), so a killed campaign resumes with
`--resume` at the first step without a line; a step cut short is redone under a new run number (its
incomplete file stays, never overwritten). Whatever ends the campaign, `TestStand.close()` puts the HV in
its safe state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from daq.campaign_config import CampaignStep
from daq.campaign_fit import BorrowedQspe, fit_run, fit_summary
from daq.campaign_journal import Journal
from daq.campaign_setup import Campaign, borrowed_for
from daq.config import RunConfig
from daq.engine import RunStatus
from daq.run_context import RunState
from daq.stand import StandError, TestStand
from drivers.ndt1470 import ChannelStatus

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often the campaign looks at the stand's snapshot
SEQUENCE_GIVE_WAY_S = 15.0  # a previous cooldown sequence, aborted, ends within a few readings
HV_TOLERANCE_V = 5.0
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 3, 130


class StepFailed(RuntimeError):
    """A step could not be completed (stability timeout, HV trip, run fault, interlock); the text says why."""


class Interrupted(RuntimeError):
    """Ctrl-C / SIGTERM: the campaign stops; the step in progress is not journaled."""


class CampaignRunner:
    """Execute the steps of a campaign in order on one TestStand; `run()` returns the exit code."""

    def __init__(
        self,
        campaign: Campaign,
        journal: Journal,
        out: TextIO,
        stand_factory: Callable[[RunConfig, str], TestStand] = TestStand,
    ) -> None:
        self.campaign = campaign
        self.journal = journal
        self.out = out
        self.interrupted = threading.Event()
        self._stand_factory = stand_factory
        self.stand: TestStand | None = None
        cfg = campaign.config
        self._cryo_scale = cfg.cryostat.time_scale if cfg.cryostat.simulate else 1.0
        self._setpoint_before = float("nan")

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def interrupt(self, reason: str) -> None:
        """Stop the campaign from a signal handler or another thread: the running run stops cleanly."""
        self.interrupted.set()
        stand = self.stand
        if stand is not None:
            stand.stop_run(reason)
            stand.abort_sequence("cryostat")
            stand.abort_sequence("hv")

    def _check(self) -> None:
        if self.interrupted.is_set():
            raise Interrupted("interrupted")

    def run(self) -> int:
        scan = self.campaign.scan
        done = self.journal.finished()
        todo = [s for s in scan.steps if s.name not in done]
        if done:
            self._say(
                f"resuming: {len(done)} step(s) already finished ({', '.join(done)}), {len(todo)} to go"
            )
        code = EXIT_OK
        try:
            if todo:
                self.stand = self._stand_factory(self.campaign.config, str(self.campaign.config_path))
                code = self._steps(todo)
        except Interrupted:
            self._say("campaign interrupted: the step in progress is not journaled; --resume redoes it")
            code = EXIT_INTERRUPTED
        finally:
            if self.stand is not None:
                if scan.hv_off_at_end and self.stand.slow.hv is not None:
                    try:
                        self.stand.hv_off()
                    except StandError as exc:
                        log.error("HV off at the end of the campaign: %s", exc)
                self.stand.close()  # the HV's safe state, whatever happened
        return code

    def _steps(self, todo: list[CampaignStep]) -> int:
        for step in todo:
            self._check()
            try:
                entry = self._step(step)
            except StepFailed as exc:
                if self.campaign.scan.on_failure == "stop":
                    self._say(f"step {step.name} failed: {exc}; campaign stopped (on_failure: stop), "
                              f"--resume redoes it")  # fmt: skip
                    return EXIT_FAILED
                self._say(f"step {step.name} failed: {exc}; skipped (on_failure: skip)")
                entry = self._entry(step, "failed", error=str(exc))
            self.journal.append(entry)
        self._check()  # a signal during the last fit: no report
        return EXIT_OK

    def _entry(self, step: CampaignStep, status: str, **fields: object) -> dict:
        return {
            "step": step.name,
            "status": status,
            "fingerprint": step.fingerprint(),
            "temperature_k": step.temperature_k,
            "comment": step.comment,
            "simulated": self.campaign.config.digitizer.simulated,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "run_file": None,
            **fields,
        }

    def _step(self, step: CampaignStep) -> dict:
        self._say(f"step {step.name}: to {step.temperature_k:g} K at {step.ramp_k_per_min:g} K/min")
        self._cooler(step)
        self._go_to(step)
        self._heater_range(step)
        self._wait_stable(step)
        self._hv(step)
        status = self._run(step)
        rel = status.path.relative_to(self.campaign.directory) if status.path else None
        entry = self._entry(step, "done", run_file=str(rel), run_number=status.run_number,
                            events=status.counters.written, stop_reason=status.stop_reason)  # fmt: skip
        entry["fit"] = self._quick_fit(status.path)
        return entry

    def _cooler(self, step: CampaignStep) -> None:
        """Switch the simulated cryocooler as the step asks (the simulator's hook: prepare() refuses it otherwise)."""
        sim = self._stand().slow.cryo_sim
        state = None  # the last state a step up to this one asked for (a resumed campaign restores it)
        for s in self.campaign.scan.steps:
            state = s.cryocooler or state
            if s.name == step.name:
                break
        if state is None or sim is None:
            return
        self._say(f"step {step.name}: cryocooler {state} (simulated)")
        sim.set_cooler(state == "on")

    def _go_to(self, step: CampaignStep) -> None:
        stand = self._stand()
        stand.abort_sequence("cryostat")  # a previous step's cooldown still holding gives way
        latest = stand.snapshot().temperature
        self._setpoint_before = latest.setpoint_k if latest is not None else float("nan")
        deadline = time.monotonic() + SEQUENCE_GIVE_WAY_S
        while True:
            try:
                stand.start_cooldown(step.temperature_k, step.ramp_k_per_min)
                break
            except StandError as exc:
                if "still running" not in str(exc) or time.monotonic() > deadline:
                    raise StepFailed(f"cannot set {step.temperature_k:g} K: {exc}") from None
            self._check()
            time.sleep(POLL_S)

    def _heater_range(self, step: CampaignStep) -> None:
        """Set the step's heater range once the cooldown has programmed the controller (it sets the configured
        range last): on the session's Lake Shore loop, which the core owns; TestStand has no call for it."""
        cryostat = self._stand().slow.cryostat
        if step.heater_range is None or cryostat is None:
            return
        deadline = time.monotonic() + SEQUENCE_GIVE_WAY_S
        while time.monotonic() < deadline:  # the setpoint moving (a ramp) or at its target: programmed
            self._check()
            reading = cryostat.latest
            if reading is not None and (
                abs(reading.setpoint_k - step.temperature_k) < 1e-3
                or reading.setpoint_k != self._setpoint_before
            ):
                break
            time.sleep(POLL_S)
        else:
            raise StepFailed(f"the Lake Shore 325 did not take the setpoint {step.temperature_k:g} K")
        time.sleep(3 * cryostat.period_s)  # the program (setpoint, then range) has run by the next polls
        cryostat.submit(lambda ls: ls.set_heater_range(1, step.heater_range)).result(30.0)
        self._say(f"step {step.name}: heater range {step.heater_range}")

    def _wait_stable(self, step: CampaignStep) -> None:
        """Wait until the stage stays within the step's band of its setpoint, and the crystal within a spread of
        the band, for the step's hold (instrument seconds). The crystal may settle off the setpoint (it radiates
        to the shield: ~3.4 K below a 290 K stage with a cold shield); the fit uses its measured temperature."""
        stand = self._stand()
        deadline = time.monotonic() + step.stable_timeout_s / self._cryo_scale
        window: list[tuple[float, float]] = []  # (monotonic s, crystal K) since the stage entered the band
        last_time = None
        last_say = 0.0
        while True:
            self._check()
            snap = stand.snapshot()
            loop = stand.slow.cryostat if stand.slow is not None else None
            if (
                loop is not None and loop.faulted
            ):  # not one failed poll (a serial timeout): it stops answering
                raise StepFailed(f"Lake Shore 325: {snap.cryostat_error or loop.error}")
            r = snap.temperature
            now = time.monotonic()
            if r is not None and r.time_s != last_time:
                last_time = r.time_s
                if abs(r.stage_k - step.temperature_k) <= step.stable_band_k:
                    window.append((now, r.crystal_k))
                    while max(k for _, k in window) - min(k for _, k in window) > step.stable_band_k:
                        window.pop(0)  # the crystal still moving: the hold starts after it
                else:
                    window.clear()
                if window and (now - window[0][0]) * self._cryo_scale >= step.stable_hold_s:
                    self._say(
                        f"step {step.name}: stable at stage {r.stage_k:.3f} K, crystal {r.crystal_k:.3f} K"
                    )
                    return
                if now - last_say > 5.0:
                    self._say(f"step {step.name}: stage {r.stage_k:.2f} K, crystal {r.crystal_k:.2f} K, "
                              f"setpoint {r.setpoint_k:.2f} K")  # fmt: skip
                    last_say = now
            if now > deadline:
                where = f"stage {r.stage_k:.3f} K, crystal {r.crystal_k:.3f} K" if r else "no reading"
                raise StepFailed(
                    f"not stable (stage within {step.stable_band_k:g} K of {step.temperature_k:g} K, crystal "
                    f"steady within {step.stable_band_k:g} K) for {step.stable_hold_s:g} s in "
                    f"{step.stable_timeout_s:g} s ({where}); check the cold head and heater, or widen "
                    f"stable_band_k / raise stable_timeout_s"
                )
            time.sleep(POLL_S)

    def _hv(self, step: CampaignStep) -> None:
        """Bias the PMT at the step's voltage (the run configuration's hv.voltage_v if none) and verify VMON."""
        stand = self._stand()
        if stand.slow.hv is None:
            return
        cfg = self.campaign.config.hv
        target = step.hv_v if step.hv_v is not None else cfg.voltage_v
        reading = stand.snapshot().hv
        ramping = ChannelStatus.RUP | ChannelStatus.RDW
        if (
            reading is not None
            and abs(abs(reading.vmon_v) - abs(target)) <= HV_TOLERANCE_V
            and (reading.status & ChannelStatus.ON)
        ):
            return
        self._say(f"step {step.name}: HV to {target:g} V")
        try:
            stand.hv_on(target)
        except StandError as exc:
            raise StepFailed(f"HV on: {exc}") from None
        scale = cfg.time_scale if cfg.simulate else 1.0
        deadline = time.monotonic() + cfg.ramp_timeout_s / scale + 5.0
        while time.monotonic() < deadline:
            self._check()
            time.sleep(POLL_S)
            snap = stand.snapshot()
            if "stopped" in snap.hv_sequence:
                raise StepFailed(f"NDT1470: {snap.hv_sequence}")
            r = snap.hv
            if (
                r is not None
                and r.time_s > 0
                and abs(abs(r.vmon_v) - abs(target)) <= HV_TOLERANCE_V
                and not r.status & ramping
                and r.status & ChannelStatus.ON
            ):
                return
        raise StepFailed(
            f"NDT1470 did not reach {target:g} V within {cfg.ramp_timeout_s:g} s (hv.ramp_timeout_s)"
        )

    def _run(self, step: CampaignStep) -> RunStatus:
        stand = self._stand()
        comment = f"campaign step {step.name}: {step.comment}".rstrip(": ")
        try:
            stand.start_run(step.events, step.duration_s, comment)
        except StandError as exc:
            raise StepFailed(f"run refused: {exc}") from None
        engine = stand.engine
        assert engine is not None
        self._say(f"step {step.name}: run started ({step.events or '-'} events, {step.duration_s or '-'} s)")
        while not engine.wait(0.2):
            if self.interrupted.is_set():
                engine.request_stop("campaign interrupted")
                engine.wait(60.0)
                raise Interrupted("interrupted during the run")
        if self.interrupted.is_set():  # the signal's stop ended the run: cut short, not a finished step
            raise Interrupted("interrupted during the run")
        status = engine.status()
        self._say(f"step {step.name}: run {status.run_number} {status.state.value}, {status.counters.written} "
                  f"events ({status.stop_reason})")  # fmt: skip
        if status.state is RunState.FAULT or status.path is None:
            raise StepFailed(f"run {status.run_number} ended in a fault: {status.stop_reason}")
        if status.stop_reason.startswith("interlock"):
            raise StepFailed(f"run {status.run_number} stopped by an {status.stop_reason}")
        return status

    def _quick_fit(self, path: Path | None) -> dict:
        if path is None:
            return {"error": "no run file"}
        fit = fit_summary(fit_run(path, self._borrowed()))
        ly, q, fwhm = fit["ly59_pe_per_kevee"], fit["q_spe_adc_ns"], fit["fwhm59_percent"]
        self._say(
            f"  quick fit: Qspe {q if q is None else f'{q:.2f}'} ADC*ns, LY(59.54 keV) "
            f"{ly if ly is None else f'{ly:.2f}'} PE/keVee, FWHM {fwhm if fwhm is None else f'{fwhm:.1f}'} %"
            + (f" ({fit['error']})" if fit["error"] else "")
        )
        return fit

    def _borrowed(self) -> BorrowedQspe | None:
        """The Qspe of the last finished step that calibrated itself (for a run too warm to do so)."""
        return borrowed_for(self.journal.records)

    def _stand(self) -> TestStand:
        assert self.stand is not None
        return self.stand
