"""Driver of the CAEN DT5751 digitizer (Dig1 standard firmware) through CAEN FELib's node interface.

The same code runs a real board (`dig1://` URL, caen_felib) and the device-tree simulator
(`sim://` URL, simulators.dt5751). One thread owns a board: the one that opened it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from drivers.dt5751_settings import (
    ADC_MAX,
    DigitizerSettings,
    EffectiveChannel,
    EffectiveSettings,
)
from drivers.event_batch import EventBatch
from drivers.felib_types import DataField, ErrorCode, FelibError, FelibNode

log = logging.getLogger(__name__)

ACQ_STATUS_REGISTER = 0x8104
ACQ_STATUS_RUN_BIT = 1 << 2
ACQ_STATUS_EVENT_READY_BIT = 1 << 3
ACQ_STATUS_EVENT_FULL_BIT = 1 << 4
TRIGGER_ID_BITS = 24  # width of the board's event counter in the event header
CALIBRATION_DELAY_AFTER_RESET_S = 0.1
WAVEFORM_ROW_MARGIN = 64  # extra samples per FELib waveform row beyond the read-back record length
END_OF_RUN_SILENCE_S = 1.0  # without STOP, this long without events after a disarm ends the run
RAIL_FRACTION_MAX = 0.01  # baseline records with more samples at 0 or 1023 are clipped
QUIET_LIMIT_ADC = 10.0  # a baseline record with a sample further than this from the level holds a pulse ...
QUIET_LIMIT_SIGMA = 6.0  # ... or further than this many sigma of the input's noise, if that is larger ...
QUIET_LIMIT_MAX_ADC = 64.0  # ... but never further than this
NOISY_INPUT_ADC = 3.0  # baseline noise above this is worth a warning
_START_MODES = {"sw": "START_MODE_SW", "s_in": "START_MODE_S_IN", "first_trg": "START_MODE_FIRST_TRG"}
_SIM_HINT = (
    "To run without the board, use the simulator: set digitizer.url to 'sim://dt5751' (config/run.yaml)."
)


class DigitizerError(RuntimeError):
    """A DT5751 operation failed; the message names the board, the call and what to do."""

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class DigitizerLinkError(DigitizerError):
    """The link to the board is lost (FELib COMMUNICATION_ERROR): the run must stop."""


class FelibNotAvailableError(DigitizerError):
    """caen_felib or CAEN's native libraries are not installed on this machine."""


def _bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def _parse_bool(text: str) -> bool:
    upper = text.strip().upper()
    if upper not in ("TRUE", "FALSE"):
        raise DigitizerError(f"DT5751 returned {text!r} where TRUE or FALSE was expected")
    return upper == "TRUE"


def _open_real_board(url: str) -> tuple[FelibNode, tuple[type[BaseException], ...]]:
    try:
        from caen_felib import device, error  # imported only when a real board is opened
    except ImportError as exc:
        raise FelibNotAvailableError(
            f"Cannot open the DT5751 at {url}: the Python package caen-felib is not installed ({exc}). "
            f"Install it with `pip install caen-felib==1.4.0` and CAEN's FELib and Dig1 libraries. {_SIM_HINT}"
        ) from exc
    except (RuntimeError, OSError) as exc:
        cause = exc.__cause__ or exc  # caen_felib wraps the loader's OSError, which names the file
        raise FelibNotAvailableError(
            f"Cannot open the DT5751 at {url}: the native library libCAEN_FELib.so (CAEN FELib) was not found "
            f"({cause}). Install CAEN FELib, CAEN Dig1, CAENDigitizer and CAENComm from caen.it. {_SIM_HINT}"
        ) from exc
    try:
        root = device.connect(url)
    except error.Error as exc:
        code = ErrorCode(int(exc.code))
        if code is ErrorCode.DEVICE_LIBRARY_NOT_AVAILABLE:
            raise FelibNotAvailableError(
                f"Cannot open the DT5751 at {url}: CAEN FELib cannot load libCAEN_Dig1.so "
                f"(the Dig1 library for x751 boards): {exc}. Install CAEN Dig1. {_SIM_HINT}",
                code,
            ) from exc
        raise DigitizerError(
            f"Cannot open the DT5751 at {url}: {code.name} ({exc}). Check the URL (link_num, conet_node), "
            f"that the board is powered and its USB/optical cable connected, and that no other program "
            f"(WaveDump, CoMPASS) holds it.",
            code,
        ) from exc
    return root, (error.Error, FelibError)


def connect_node(url: str, **sim_options: Any) -> tuple[FelibNode, tuple[type[BaseException], ...]]:
    """Open the root node for `url` and return it with the exception types its calls raise.

    url: `dig1://caen.internal/usb?link_num=0` (real board) or `sim://dt5751?seed=1` (simulator).
    sim_options: keyword options of simulators.dt5751.connect (physics settings, clock); sim:// only.
    Raises FelibNotAvailableError without CAEN's libraries, DigitizerError for anything else.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sim":
        from simulators.dt5751 import connect as connect_simulator  # the only place drivers reach simulators

        try:
            return connect_simulator(url, **sim_options), (FelibError,)
        except FelibError as exc:
            raise DigitizerError(f"Cannot open the simulated DT5751 at {url}: {exc}", exc.code) from exc
    if sim_options:
        raise ValueError(f"simulator options {sorted(sim_options)} given for the real board at {url}")
    if scheme == "dig1":
        return _open_real_board(url)
    raise DigitizerError(
        f"Unsupported DT5751 URL {url!r}: use dig1://caen.internal/usb?link_num=0 (USB), "
        f"dig1://caen.internal/optical_link?link_num=0&conet_node=0 (optical) or sim://dt5751 (simulator)."
    )


class Dt5751:
    """A DT5751 board: configure, arm, read event batches, disarm, close.

    Every method must be called from the thread that opened the board (FELib's thread rules);
    another thread gets a RuntimeError.
    """

    def __init__(
        self,
        root: FelibNode,
        url: str,
        error_types: tuple[type[BaseException], ...],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._root = root
        self.url = url
        self._errors = error_types
        self._sleep = sleep
        self._owner = threading.get_ident()
        self._ep: FelibNode | None = None
        self._fields: dict[str, DataField] = {}
        self._data: tuple[DataField, ...] = ()
        self._effective: EffectiveSettings | None = None
        self._rows: tuple[int, ...] = ()
        self._last_trigger_id: int | None = None
        self._armed = False
        self._ended = False
        self._disarmed_at = 0.0
        self._last_event_at = 0.0
        self.end_signal = ""  # how the last run ended: STOP, or TIMEOUT after a long silence
        self.lost_triggers_total = 0
        self.events_read_total = 0
        self.model = self._get("/par/MODELNAME")
        self.serial = self._get("/par/SERIALNUM")
        self.n_channels = int(float(self._get("/par/NUMCH")))
        if "5751" not in self.model and "751" not in self.model:
            log.warning(
                "Board at %s reports model %s, not a DT5751; continuing with x751 settings", url, self.model
            )

    @classmethod
    def open(cls, url: str, **sim_options: Any) -> Dt5751:
        """Connect to the board at `url` (dig1:// or sim://) and read its identity."""
        root, error_types = connect_node(url, **sim_options)
        return cls(root, url, error_types)

    # ---- low-level calls, each wrapped so a failure names the board and the call ----

    def _check_owner(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError(
                f"DT5751 {self.url} is owned by the thread that opened it; "
                f"send requests to that thread instead of calling the driver from another one"
            )

    def _fail(self, what: str, exc: BaseException) -> NoReturn:
        code = ErrorCode(int(getattr(exc, "code", ErrorCode.GENERIC_ERROR)))
        func = getattr(exc, "func", "?")
        text = f"DT5751 {self.url}: {what} failed with {code.name} in {func}: {exc}"
        if code is ErrorCode.COMMUNICATION_ERROR:
            raise DigitizerLinkError(
                f"{text}. The link to the board is lost: check the USB/optical cable and the board's power, "
                f"then restart the run; events already read are safe.",
                code,
            ) from exc
        raise DigitizerError(text, code) from exc

    def _get(self, path: str) -> str:
        self._check_owner()
        try:
            return self._root.get_value(path)
        except self._errors as exc:
            self._fail(f"reading {path}", exc)

    def _set(self, path: str, value: str) -> None:
        self._check_owner()
        try:
            self._root.set_value(path, value)
        except self._errors as exc:
            if int(getattr(exc, "code", 0)) == ErrorCode.INVALID_PARAM:
                raise DigitizerError(
                    f"DT5751 {self.url} refused {path} = {value!r}: {exc}. Allowed: {self._allowed(path)}.",
                    ErrorCode.INVALID_PARAM,
                ) from exc
            self._fail(f"setting {path} = {value!r}", exc)

    def _allowed(self, path: str) -> str:
        parts = []
        for attribute in ("minvalue", "maxvalue", "allowedvalues"):
            try:
                text = self._root.get_value(f"{path}/{attribute}")
            except self._errors:
                continue
            if text:
                parts.append(f"{attribute} {text}")
        return ", ".join(parts) or "see the board's device tree"

    def _command(self, name: str) -> None:
        self._check_owner()
        try:
            self._root.send_command(f"/cmd/{name}")
        except self._errors as exc:
            self._fail(f"command {name}", exc)

    def _number(self, path: str) -> float:
        text = self._get(path)
        try:
            return float(text)
        except ValueError:
            raise DigitizerError(f"DT5751 {self.url} returned {text!r} for {path}, not a number") from None

    # ---- configuration ----

    def configure(self, settings: DigitizerSettings) -> EffectiveSettings:
        """Reset and configure the board, measure baselines, set thresholds; return the read-back settings.

        Raises DigitizerError if the board refuses a value, or if a threshold relative to the
        measured baseline falls outside 0-1023 (move the DC offset), never clipping it.
        """
        self._check_owner()
        self._require_idle("configure")
        self._command("RESET")
        reset_at = time.monotonic()
        rate_msps = self._number("/par/ADC_SAMPLRATE")
        period_ns = 1000.0 / rate_msps
        self._set("/par/RECLEN", str(round(settings.record_length_samples * period_ns)))
        self._set("/par/POSTTRG", str(round(settings.post_trigger_samples * period_ns)))
        self._set("/par/STARTMODE", _START_MODES["sw"])  # software start while measuring baselines
        self._set("/par/TRG_SW_ENABLE", "TRUE")
        self._set("/par/TRG_EXT_ENABLE", _bool(settings.external_trigger))
        self._set("/par/IOLEVEL", "FPIOTYPE_NIM" if settings.io_level == "nim" else "FPIOTYPE_TTL")
        self._set("/par/TRG_COUNT_ALL", "TRUE")
        self._set("/par/SELF_TRIGGER_EDGE", "FALL" if settings.polarity == "negative" else "RISE")
        for ch in range(self.n_channels):
            cs = settings.channels.get(ch)
            enabled = cs is not None and cs.enabled
            self._set(f"/ch/{ch}/par/CH_ENABLED", _bool(enabled))
            if cs is not None and enabled:
                self._set(f"/ch/{ch}/par/CH_DCOFFSET", f"{cs.dc_offset_pct:.1f}")
            self._set(f"/ch/{ch}/par/CH_TRG_GLOBAL_GEN", "FALSE")
            self._set(f"/ch/{ch}/par/CH_OUT_PROPAGATE", "FALSE")
        wait_s = CALIBRATION_DELAY_AFTER_RESET_S - (time.monotonic() - reset_at)
        if wait_s > 0:
            self._sleep(wait_s)
        self._command("CALIBRATEADC")
        reclen = round(self._number("/par/RECLEN") / period_ns)
        post = round(self._number("/par/POSTTRG") / period_ns)
        enabled = settings.enabled_channels
        self._setup_endpoint(reclen)
        self._rows = enabled
        baselines = self._measure_baselines(settings.baseline_triggers, reclen, post)
        for ch, cs in settings.channels.items():
            if not (cs.enabled and cs.self_trigger):
                continue
            base = baselines[ch][0]
            level = (
                round(base) - cs.threshold_adc
                if settings.polarity == "negative"
                else round(base) + cs.threshold_adc
            )
            if not 0 <= level <= ADC_MAX:
                raise DigitizerError(
                    f"DT5751 {self.url} channel {ch}: baseline {base:.1f} ADC with a threshold of {cs.threshold_adc} "
                    f"ADC ({settings.polarity} polarity) puts the trigger level at {level}, outside 0-{ADC_MAX}. "
                    f"Move channels.{ch}.dc_offset_pct so the baseline leaves room for the pulses."
                )
            self._set(f"/ch/{ch}/par/CH_THRESHOLD", str(level))
            self._set(f"/ch/{ch}/par/CH_TRG_GLOBAL_GEN", "TRUE")
        self._set("/par/STARTMODE", _START_MODES[settings.start_mode])
        self._effective = self._read_back(settings, baselines)
        return self._effective

    def _setup_endpoint(self, reclen: int) -> None:
        try:
            names = [node.name.lower() for node in self._root.get_child_nodes("/endpoint")]
        except self._errors as exc:
            self._fail("listing /endpoint", exc)
        if "scope" not in names:
            raise DigitizerError(
                f"DT5751 {self.url} has no scope endpoint (endpoints: {names}). It needs the standard "
                f"waveform-recording firmware, not a DPP firmware; load it with CAEN's upgrade tool."
            )
        self._set("/endpoint/par/ACTIVEENDPOINT", "scope")
        fmt = [
            {"name": "TIMESTAMP_NS", "type": "U64"},
            {"name": "TRIGGER_ID", "type": "U32"},
            {
                "name": "WAVEFORM",
                "type": "U16",
                "dim": 2,
                "shape": [self.n_channels, reclen + WAVEFORM_ROW_MARGIN],
            },
            {"name": "WAVEFORM_SIZE", "type": "SIZE_T", "dim": 1, "shape": [self.n_channels]},
            {"name": "BOARD_FAIL", "type": "BOOL"},
            {"name": "EVENT_SIZE", "type": "SIZE_T"},
        ]
        self._check_owner()
        try:
            self._ep = self._root.get_node("/endpoint/scope")
            self._data = self._ep.set_read_data_format(fmt)
        except self._errors as exc:
            self._fail("setting the scope endpoint's data format", exc)
        self._fields = {f.name: f for f in self._data}
        self._reclen = reclen

    def _measure_baselines(self, n_triggers: int, reclen: int, post: int) -> dict[int, tuple[float, float]]:
        """Take software triggers with self-triggers off; per channel return (baseline, rms) in ADC."""
        self.arm()
        try:
            for _ in range(n_triggers):
                self._command("SENDSWTRIGGER")
            events: list[np.ndarray] = []
            deadline = time.monotonic() + 5.0
            while len(events) < n_triggers and time.monotonic() < deadline:
                batch = self.read_batch(n_triggers - len(events), max_wait_s=0.5)
                events.extend(batch.waveforms)
                if batch.end_of_run:
                    break
        finally:
            self.disarm()
            self._drain()
        if len(events) < n_triggers:
            raise DigitizerError(
                f"DT5751 {self.url}: only {len(events)} of {n_triggers} software triggers returned an event "
                f"while measuring baselines. Check that TRG_SW_ENABLE is honoured and the board is not busy."
            )
        records = np.asarray(events, dtype=np.float64)  # (n, channels, samples)
        result: dict[int, tuple[float, float]] = {}
        for j, ch in enumerate(self._rows):
            per_event = np.median(records[:, j, :], axis=1)
            level = float(np.median(per_event))
            deviation = np.abs(records[:, j, :] - level)
            # a record holding a pulse is rejected: beyond 10 ADC, or beyond 6 sigma of a noisier input (a SiPM
            # at 3-5 ADC rms), but never beyond 64 ADC: an oscillating or floating input stays refused
            sigma = 1.4826 * float(np.median(deviation))  # robust: pulses do not inflate it
            limit = min(max(QUIET_LIMIT_ADC, QUIET_LIMIT_SIGMA * sigma), QUIET_LIMIT_MAX_ADC)
            quiet = deviation.max(axis=1) < limit
            if quiet.sum() < max(1, n_triggers // 2):
                raise DigitizerError(
                    f"DT5751 {self.url} channel {ch}: {int((~quiet).sum())} of {n_triggers} baseline records hold "
                    f"pulses or noise more than {limit:.0f} ADC from the baseline (noise {sigma:.1f} ADC rms); the "
                    f"baseline cannot be measured. Check the input, its grounding and the HV."
                )
            if sigma > NOISY_INPUT_ADC:
                log.warning(
                    "DT5751 %s channel %d: baseline noise %.1f ADC rms (a PMT input is below 1): check the "
                    "grounding and the cable", self.url, ch, sigma,
                )  # fmt: skip
            samples = records[quiet, j, :]
            at_rail = float(np.mean((samples <= 0) | (samples >= ADC_MAX)))
            if at_rail > RAIL_FRACTION_MAX:
                raise DigitizerError(
                    f"DT5751 {self.url} channel {ch}: {at_rail:.0%} of the baseline samples sit at the ADC limit "
                    f"(0 or {ADC_MAX}), so the baseline ({samples.mean():.1f} ADC) is clipped and cannot be "
                    f"measured. Move channels.{ch}.dc_offset_pct away from the end of the range."
                )
            result[ch] = (float(samples.mean()), float(samples.std()))
        self._last_trigger_id = None
        self.lost_triggers_total = 0
        self.events_read_total = 0
        self._ended = False
        return result

    def _read_back(
        self, settings: DigitizerSettings, baselines: dict[int, tuple[float, float]]
    ) -> EffectiveSettings:
        rate = self._number("/par/ADC_SAMPLRATE")
        period_ns = 1000.0 / rate
        channels = []
        for ch in range(self.n_channels):
            enabled = _parse_bool(self._get(f"/ch/{ch}/par/CH_ENABLED"))
            trig = _parse_bool(self._get(f"/ch/{ch}/par/CH_TRG_GLOBAL_GEN"))
            base, rms = baselines.get(ch, (float("nan"), float("nan")))
            cs = settings.channels.get(ch)
            channels.append(
                EffectiveChannel(
                    channel=ch,
                    enabled=enabled,
                    dc_offset_pct=self._number(f"/ch/{ch}/par/CH_DCOFFSET"),
                    self_trigger=trig,
                    baseline_adc=base,
                    baseline_rms_adc=rms,
                    threshold_relative_adc=cs.threshold_adc if (cs and trig) else 0,
                    threshold_absolute_adc=round(self._number(f"/ch/{ch}/par/CH_THRESHOLD")),
                )
            )
        return EffectiveSettings(
            model=self.model,
            serial=self.serial,
            firmware_roc=self._get("/par/ROC_FWVER"),
            firmware_amc=self._get("/par/AMC_FWVER"),
            adc_bits=round(self._number("/par/ADC_NBIT")),
            sampling_rate_msps=rate,
            record_length_samples=round(self._number("/par/RECLEN") / period_ns),
            post_trigger_samples=round(self._number("/par/POSTTRG") / period_ns),
            start_mode=self._get("/par/STARTMODE"),
            self_trigger_edge=self._get("/par/SELF_TRIGGER_EDGE"),
            trigger_count_all=_parse_bool(self._get("/par/TRG_COUNT_ALL")),
            external_trigger=_parse_bool(self._get("/par/TRG_EXT_ENABLE")),
            channels=tuple(channels),
        )

    @property
    def effective_settings(self) -> EffectiveSettings:
        """The settings read back by the last configure()."""
        if self._effective is None:
            raise DigitizerError(f"DT5751 {self.url} is not configured yet: call configure() first")
        return self._effective

    # ---- acquisition ----

    def _require_idle(self, what: str) -> None:
        if self._armed:
            raise DigitizerError(f"DT5751 {self.url}: cannot {what} while armed; disarm first")

    def arm(self) -> None:
        """Clear the board's buffers and arm; with start mode sw the run starts now."""
        if self._ep is None:
            raise DigitizerError(f"DT5751 {self.url} is not configured: call configure() before arm()")
        self._require_idle("arm")
        self._command("CLEARDATA")
        self._command("ARMACQUISITION")
        self._armed = True
        self._ended = False
        self.end_signal = ""
        self._last_trigger_id = None

    def disarm(self) -> None:
        """Stop the run; events still in the board's memory remain readable until STOP."""
        if self._armed:
            self._command("DISARMACQUISITION")
            self._armed = False
            self._disarmed_at = time.monotonic()

    def _drain(self) -> None:
        """After a disarm, discard what is left until STOP or TIMEOUT, then clear the board."""
        while not self.read_batch(1024, max_wait_s=0.2).end_of_run:
            pass
        self._command("CLEARDATA")

    def memory_full(self) -> bool:
        """Return True while the board's event memory is full (register 0x8104 bit 4): triggers are lost."""
        self._check_owner()
        try:
            status = self._root.get_user_register(ACQ_STATUS_REGISTER)
        except self._errors as exc:
            self._fail("reading the acquisition status register 0x8104", exc)
        return bool(status & ACQ_STATUS_EVENT_FULL_BIT)

    def read_batch(self, max_events: int = 256, max_wait_s: float = 0.1) -> EventBatch:
        """Read up to `max_events` events, waiting at most `max_wait_s` in all; copy them out of FELib's buffers.

        Returns a batch with 0..max_events events; end_of_run is set after FELib signals STOP (or
        TIMEOUT once disarmed), after which no more events come. Raises DigitizerLinkError if the
        link is lost and DigitizerError for any other failure.
        """
        self._check_owner()
        if self._ep is None:
            raise DigitizerError(f"DT5751 {self.url} is not configured: call configure() before reading")
        n_ch = len(self._rows)
        reclen = self._reclen
        waveforms = np.empty((max_events, n_ch, reclen), dtype=np.int16)
        stamps = np.empty(max_events, dtype=np.uint64)
        ids = np.empty(max_events, dtype=np.uint32)
        sizes = np.empty(max_events, dtype=np.uint64)
        wf = self._fields["WAVEFORM"].value
        wf_size = self._fields["WAVEFORM_SIZE"].value
        ts = self._fields["TIMESTAMP_NS"].value
        tid = self._fields["TRIGGER_ID"].value
        evsize = self._fields["EVENT_SIZE"].value
        fail = self._fields["BOARD_FAIL"].value
        lost = 0
        n = 0
        ended = self._ended
        memory_full = self.memory_full() if self._armed else False  # full now: triggers are being lost
        deadline = time.monotonic() + max_wait_s
        ep = self._ep
        while n < max_events and not ended:
            timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
            try:
                ep.read_data(timeout_ms, self._data)
            except self._errors as exc:
                code = int(getattr(exc, "code", ErrorCode.GENERIC_ERROR))
                if code == ErrorCode.TIMEOUT:
                    quiet_s = time.monotonic() - max(self._disarmed_at, self._last_event_at)
                    if not self._armed and n == 0 and quiet_s >= END_OF_RUN_SILENCE_S:
                        ended = True  # no STOP came: a long silence after the disarm ends the run
                        self.end_signal = "TIMEOUT"
                    break
                if code == ErrorCode.STOP:
                    ended = True
                    self.end_signal = "STOP"
                    break
                self._fail("read_data on the scope endpoint", exc)
            if bool(fail):
                raise DigitizerError(
                    f"DT5751 {self.url} flags BOARD_FAIL in event {int(tid)}: PLL unlock or overheating. "
                    f"Check /par/PLLLOCKED and the board temperature, then power-cycle the board."
                )
            for j, row in enumerate(self._rows):
                size = int(wf_size[row])
                if size != reclen:
                    raise DigitizerError(
                        f"DT5751 {self.url} sent {size} samples on channel {row} where the read-back record "
                        f"length is {reclen}; reconfigure the board (RECLEN changed behind the driver?)"
                    )
                waveforms[n, j] = wf[row, :reclen]
            trigger_id = int(tid)
            lost += self._count_gap(trigger_id)
            self._last_event_at = time.monotonic()
            stamps[n] = ts
            ids[n] = trigger_id
            sizes[n] = evsize
            n += 1
            if time.monotonic() >= deadline:
                break
        if self._armed:
            memory_full = self.memory_full() or memory_full
        self._ended = ended
        self.lost_triggers_total += lost
        self.events_read_total += n
        return EventBatch(
            waveforms=waveforms[:n],
            timestamp_ns=stamps[:n],
            trigger_id=ids[:n],
            channels=self._rows,
            lost_triggers=lost,
            memory_full_seen=memory_full,
            end_of_run=ended,
            event_size_bytes=sizes[:n],
        )

    def _count_gap(self, trigger_id: int) -> int:
        previous = self._last_trigger_id
        self._last_trigger_id = trigger_id
        if previous is None:
            return trigger_id  # the counter starts at 0 when the run starts
        return (trigger_id - previous - 1) % (1 << TRIGGER_ID_BITS)

    def send_software_trigger(self) -> None:
        """Make one event now (TRG_SW_ENABLE is on)."""
        self._command("SENDSWTRIGGER")

    def close(self) -> None:
        """Disarm if needed and close the connection (on the owning thread)."""
        self._check_owner()
        try:
            if self._armed:
                self.disarm()
        except DigitizerError as exc:
            log.error("DT5751 %s: could not disarm while closing: %s", self.url, exc)
        finally:
            self._armed = False
            try:
                self._root.close()
            except self._errors as exc:
                log.error("DT5751 %s: closing failed: %s", self.url, exc)

    def __enter__(self) -> Dt5751:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
