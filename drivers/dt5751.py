"""Driver of the CAEN DT5751 digitizer (Dig1 standard firmware) through CAEN FELib's node interface.

The same code runs a real board (`dig1://` URL, caen_felib) and any registered stand-in such as the
device-tree simulator (`sim://`, registered by daq.digitizer_urls). One thread owns a board: the one
that opened it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from drivers.dt5751_baseline import baselines_of_records
from drivers.dt5751_errors import DigitizerError, DigitizerLinkError
from drivers.dt5751_offset import OffsetPlan, PlacedBaseline, place_baselines
from drivers.dt5751_readout import ScopeReader
from drivers.dt5751_settings import ADC_MAX, DigitizerSettings, EffectiveChannel, EffectiveSettings
from drivers.dt5751_urls import connect_node
from drivers.event_batch import EventBatch
from drivers.felib_types import ErrorCode, FelibNode
from drivers.timestamps import TimestampUnwrapper, wrap_period_ns

log = logging.getLogger(__name__)

ACQ_STATUS_REGISTER = 0x8104
CALIBRATION_DELAY_AFTER_RESET_S = 0.1
WAVEFORM_ROW_MARGIN = 64  # samples per FELib waveform row beyond the longest record the board can deliver
BASELINE_WAIT_S = 5.0  # longest wait for the software-triggered records of one baseline measurement
EXTENDED_TIME_TAG = "EXTRAS_OPT_TT48"
_START_MODES = {"sw": "START_MODE_SW", "s_in": "START_MODE_S_IN", "first_trg": "START_MODE_FIRST_TRG"}


def _bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def _parse_bool(text: str) -> bool:
    upper = text.strip().upper()
    if upper not in ("TRUE", "FALSE"):
        raise DigitizerError(f"DT5751 returned {text!r} where TRUE or FALSE was expected")
    return upper == "TRUE"


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
        self._where = f"DT5751 {url}"
        self._errors = error_types
        self._sleep = sleep
        self._owner = threading.get_ident()
        self._reader: ScopeReader | None = None  # the read side, set up by configure()
        self._effective: EffectiveSettings | None = None
        self._reclen_readback = 0
        self._timestamps = TimestampUnwrapper(wrap_period_ns(extended=False))
        self._extended_tag = False
        self._armed = False
        self.model = self._get("/par/MODELNAME")
        self.serial = self._get("/par/SERIALNUM")
        self.n_channels = int(float(self._get("/par/NUMCH")))
        if "5751" not in self.model and "751" not in self.model:
            log.warning(
                "Board at %s reports model %s, not a DT5751; continuing with x751 settings", url, self.model
            )

    @classmethod
    def open(cls, url: str, **options: Any) -> Dt5751:
        """Connect to the board at `url` (dig1:// or a registered scheme such as sim://) and read its identity."""
        root, error_types = connect_node(url, **options)
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

    def _try(self, call: Callable[[], Any]) -> tuple[bool, Any]:
        """Run `call`: (True, result), or (False, None) if the board refuses it (a parameter it lacks).

        A lost link is still a DigitizerLinkError.
        """
        self._check_owner()
        try:
            return True, call()
        except self._errors as exc:
            if int(getattr(exc, "code", 0)) == ErrorCode.COMMUNICATION_ERROR:
                self._fail("an optional call", exc)
            return False, None

    # ---- configuration ----

    def configure(self, settings: DigitizerSettings) -> EffectiveSettings:
        """Reset and configure the board, place the baselines, set thresholds; return the read-back settings.

        Each enabled channel's DC offset is found for its target baseline (settings.baseline_target_adc)
        by two measurements and verified by a third, unless dc_offset_pct is given (it wins). Raises
        DigitizerError if the board refuses a value, a baseline cannot be placed or leaves no room for the
        pulses, or a threshold relative to the measured baseline falls outside 0-1023, never clipping it.
        """
        self._check_owner()
        self._require_idle("configure")
        self._command("RESET")
        reset_at = time.monotonic()
        period_ns = 1000.0 / self._number("/par/ADC_SAMPLRATE")
        self._set("/par/RECLEN", str(round(settings.record_length_samples * period_ns)))
        self._set("/par/POSTTRG", str(round(settings.post_trigger_samples * period_ns)))
        self._set("/par/STARTMODE", _START_MODES["sw"])  # software start while measuring baselines
        self._set("/par/TRG_SW_ENABLE", "TRUE")
        self._set("/par/TRG_EXT_ENABLE", _bool(settings.external_trigger))
        self._set("/par/IOLEVEL", "FPIOTYPE_NIM" if settings.io_level == "nim" else "FPIOTYPE_TTL")
        self._set("/par/TRG_COUNT_ALL", "TRUE")
        self._set("/par/SELF_TRIGGER_EDGE", "FALL" if settings.polarity == "negative" else "RISE")
        self._extended_tag = self._enable_extended_time_tag()
        self._timestamps.reset(wrap_period_ns(self._extended_tag))
        for ch in range(self.n_channels):
            cs = settings.channels.get(ch)
            self._set(f"/ch/{ch}/par/CH_ENABLED", _bool(cs is not None and cs.enabled))
            self._set(f"/ch/{ch}/par/CH_TRG_GLOBAL_GEN", "FALSE")
            self._set(f"/ch/{ch}/par/CH_OUT_PROPAGATE", "FALSE")
        wait_s = CALIBRATION_DELAY_AFTER_RESET_S - (time.monotonic() - reset_at)
        if wait_s > 0:
            self._sleep(wait_s)
        self._command("CALIBRATEADC")
        self._reclen_readback = round(self._number("/par/RECLEN") / period_ns)
        reader = self._reader = self._setup_endpoint(settings.enabled_channels, self._row_length(period_ns))
        plans = {
            ch: OffsetPlan(settings.baseline_target_adc(ch), settings.channels[ch].dc_offset_pct)
            for ch in reader.rows
        }
        placed = place_baselines(
            self._where,
            plans,
            lambda offsets, step: self._measure_at(offsets, step, settings.baseline_triggers),
            settings.polarity,
            settings.pulse_range_adc,
        )
        if reader.record_length != self._reclen_readback:
            log.warning(
                "%s delivers %s samples per record where RECLEN reads back %d (asked %d): using what it delivers",
                self._where, reader.record_length, self._reclen_readback, settings.record_length_samples,
            )  # fmt: skip
        for ch, cs in settings.channels.items():
            if cs.enabled and cs.self_trigger:
                self._set_threshold(ch, placed[ch].baseline_adc, cs.threshold_adc, settings.polarity)
        self._set("/par/STARTMODE", _START_MODES[settings.start_mode])
        self._effective = self._read_back(settings, placed)
        log.info("%s configured:\n%s", self._where, self._effective.describe())
        return self._effective

    def _set_threshold(self, ch: int, base: float, threshold_adc: int, polarity: str) -> None:
        level = round(base) - threshold_adc if polarity == "negative" else round(base) + threshold_adc
        if not 0 <= level <= ADC_MAX:
            raise DigitizerError(
                f"DT5751 {self.url} channel {ch}: baseline {base:.1f} ADC with a threshold of {threshold_adc} "
                f"ADC ({polarity} polarity) puts the trigger level at {level}, outside 0-{ADC_MAX}. Move "
                f"channels.{ch}.baseline_adc (or dc_offset_pct) so the baseline leaves room for the pulses."
            )
        self._set(f"/ch/{ch}/par/CH_THRESHOLD", str(level))
        self._set(f"/ch/{ch}/par/CH_TRG_GLOBAL_GEN", "TRUE")

    def _enable_extended_time_tag(self) -> bool:
        """Ask for the 48-bit trigger time tag (/par/EXTRAS_OPT); False where the board has no such option."""
        accepted, _ = self._try(lambda: self._root.set_value("/par/EXTRAS_OPT", EXTENDED_TIME_TAG))
        read = self._try(lambda: self._root.get_value("/par/EXTRAS_OPT"))[1] if accepted else None
        extended = read is not None and str(read).strip().upper() == EXTENDED_TIME_TAG
        if not extended:
            how = f"EXTRAS_OPT reads {read!r}" if accepted else "it refuses /par/EXTRAS_OPT"
            log.info(
                "%s has no extended time tag (%s): its 31-bit x 8 ns tag wraps every %.2f s and is unwrapped by "
                "the driver", self._where, how, wrap_period_ns(False) * 1e-9,
            )  # fmt: skip
        return extended

    def _row_length(self, period_ns: float) -> int:
        """Samples per FELib waveform row: the longest record the board can deliver, plus a margin.

        The library writes WAVEFORM_SIZE samples into each row without knowing its length, so the row
        holds the largest RECLEN the board accepts (/par/RECLEN/maxvalue), not only the read-back one.
        """
        text = self._try(lambda: self._root.get_value("/par/RECLEN/maxvalue"))[1]
        try:
            longest = round(float(text) / period_ns)
        except (TypeError, ValueError):
            longest = 2 * self._reclen_readback
            log.warning(
                "%s: /par/RECLEN/maxvalue unreadable (%r); waveform rows sized for %d samples", self._where, text,
                longest,
            )  # fmt: skip
        return max(longest, self._reclen_readback) + WAVEFORM_ROW_MARGIN

    def _setup_endpoint(self, rows: tuple[int, ...], row_samples: int) -> ScopeReader:
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
            {"name": "WAVEFORM", "type": "U16", "dim": 2, "shape": [self.n_channels, row_samples]},
            {"name": "WAVEFORM_SIZE", "type": "SIZE_T", "dim": 1, "shape": [self.n_channels]},
            {"name": "BOARD_FAIL", "type": "BOOL"},
            {"name": "EVENT_SIZE", "type": "SIZE_T"},
        ]
        self._check_owner()
        try:
            endpoint = self._root.get_node("/endpoint/scope")
            data = endpoint.set_read_data_format(fmt)
        except self._errors as exc:
            self._fail("setting the scope endpoint's data format", exc)
        return ScopeReader(
            self._where,
            self._errors,
            self._fail,
            self._status,
            endpoint,
            data,
            rows,
            row_samples,
            self._timestamps,
        )

    def _measure_at(
        self, offsets: Mapping[int, float], step: str, n_triggers: int
    ) -> tuple[dict[int, tuple[float, float]], dict[int, float]]:
        """Set the DC offsets (channel -> %), measure the baselines; return them and the read-back offsets."""
        for ch, pct in offsets.items():
            self._set(f"/ch/{ch}/par/CH_DCOFFSET", f"{pct:.1f}")
        read_back = {ch: self._number(f"/ch/{ch}/par/CH_DCOFFSET") for ch in offsets}
        fix = (
            "Set channels.{ch}.dc_offset_pct (or baseline_adc) to move the baseline away from the ADC limit."
        )
        return self._measure_baselines(n_triggers, step, fix), read_back

    def _measure_baselines(self, n_triggers: int, step: str, fix: str) -> dict[int, tuple[float, float]]:
        """Take software triggers with self-triggers off; per channel return (baseline, rms) in ADC."""
        self.arm()
        try:
            for _ in range(n_triggers):
                self._command("SENDSWTRIGGER")
            events: list[NDArray[np.int16]] = []
            deadline = time.monotonic() + BASELINE_WAIT_S
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
                f"while measuring baselines {step}. Check that TRG_SW_ENABLE is honoured and the board is not busy."
            )
        records = np.asarray(events, dtype=np.float64)  # (n, channels, samples)
        reader = self._configured_reader("measure baselines")
        result = baselines_of_records(self._where, records, reader.rows, step, fix)
        reader.reset_totals()
        return result

    def _read_back(self, settings: DigitizerSettings, placed: dict[int, PlacedBaseline]) -> EffectiveSettings:
        rate = self._number("/par/ADC_SAMPLRATE")
        period_ns = 1000.0 / rate
        channels = []
        for ch in range(self.n_channels):
            enabled = _parse_bool(self._get(f"/ch/{ch}/par/CH_ENABLED"))
            trig = _parse_bool(self._get(f"/ch/{ch}/par/CH_TRG_GLOBAL_GEN"))
            cs = settings.channels.get(ch)
            p = placed.get(ch)
            channels.append(
                EffectiveChannel(
                    channel=ch,
                    enabled=enabled,
                    dc_offset_pct=self._number(f"/ch/{ch}/par/CH_DCOFFSET"),
                    self_trigger=trig,
                    baseline_adc=p.baseline_adc if p else float("nan"),
                    baseline_rms_adc=p.baseline_rms_adc if p else float("nan"),
                    threshold_relative_adc=cs.threshold_adc if (cs and trig) else 0,
                    threshold_absolute_adc=round(self._number(f"/ch/{ch}/par/CH_THRESHOLD")),
                    baseline_target_adc=p.target_adc if p else float("nan"),
                    dc_offset_slope_adc_per_pct=p.slope_adc_per_pct if p else float("nan"),
                    dc_offset_source=p.source if p else "",
                )
            )
        readback = round(self._number("/par/RECLEN") / period_ns)
        delivered = self._configured_reader("read back").record_length
        return EffectiveSettings(
            model=self.model,
            serial=self.serial,
            firmware_roc=self._get("/par/ROC_FWVER"),
            firmware_amc=self._get("/par/AMC_FWVER"),
            adc_bits=round(self._number("/par/ADC_NBIT")),
            sampling_rate_msps=rate,
            record_length_samples=delivered if delivered is not None else readback,
            post_trigger_samples=round(self._number("/par/POSTTRG") / period_ns),
            start_mode=self._get("/par/STARTMODE"),
            self_trigger_edge=self._get("/par/SELF_TRIGGER_EDGE"),
            trigger_count_all=_parse_bool(self._get("/par/TRG_COUNT_ALL")),
            external_trigger=_parse_bool(self._get("/par/TRG_EXT_ENABLE")),
            channels=tuple(channels),
            record_length_requested_samples=settings.record_length_samples,
            record_length_readback_samples=readback,
            extended_time_tag=self._extended_tag,
            timestamp_wrap_ns=self._timestamps.period_ns,
        )

    @property
    def effective_settings(self) -> EffectiveSettings:
        """The settings read back by the last configure()."""
        if self._effective is None:
            raise DigitizerError(f"DT5751 {self.url} is not configured yet: call configure() first")
        return self._effective

    # ---- acquisition ----

    @property
    def lost_triggers_total(self) -> int:
        """Triggers the board counted but could not store, since the last configure()."""
        return self._reader.lost_triggers_total if self._reader else 0

    @property
    def events_read_total(self) -> int:
        """Events read since the last configure()."""
        return self._reader.events_read_total if self._reader else 0

    @property
    def end_signal(self) -> str:
        """How the last run ended: STOP, EMPTY (status register, confirmed) or TIMEOUT (fallback silence)."""
        return self._reader.end_signal if self._reader else ""

    def _configured_reader(self, what: str) -> ScopeReader:
        if self._reader is None:
            raise DigitizerError(f"DT5751 {self.url} is not configured: call configure() before you {what}")
        return self._reader

    def _require_idle(self, what: str) -> None:
        if self._armed:
            raise DigitizerError(f"DT5751 {self.url}: cannot {what} while armed; disarm first")

    def arm(self) -> None:
        """Clear the board's buffers and arm; with start mode sw the run starts now (its clock at 0)."""
        reader = self._configured_reader("arm")
        self._require_idle("arm")
        self._command("CLEARDATA")
        self._command("ARMACQUISITION")
        self._armed = True
        reader.start_run()

    def disarm(self) -> None:
        """Stop the run; events still in the board's memory remain readable until the end of run."""
        if self._armed:
            self._command("DISARMACQUISITION")
            self._armed = False
            if self._reader is not None:
                self._reader.disarmed()

    def _drain(self) -> None:
        """After a disarm, discard what is left until the end of run, then clear the board."""
        while not self.read_batch(1024, max_wait_s=0.2).end_of_run:
            pass
        self._command("CLEARDATA")

    def _status(self) -> int:
        self._check_owner()
        try:
            return int(self._root.get_user_register(ACQ_STATUS_REGISTER))
        except self._errors as exc:
            self._fail("reading the acquisition status register 0x8104", exc)

    def memory_full(self) -> bool:
        """Return True while the board's event memory is full (register 0x8104 bit 4): triggers are lost."""
        self._check_owner()
        return self._configured_reader("read its status").memory_full()

    def read_batch(self, max_events: int = 256, max_wait_s: float = 0.1) -> EventBatch:
        """Read up to `max_events` events, waiting at most `max_wait_s` in all; copy them out of FELib's buffers.

        Returns a batch with 0..max_events events, timestamps unwrapped to ns since the arm (monotonic).
        end_of_run is set once disarmed and the board says so: FELib's STOP; where no STOP comes, the
        status register reporting the run stopped with an empty memory, confirmed by one more empty
        read; as a bounded fallback, 1 s without events (drivers.dt5751_readout). Raises
        DigitizerLinkError if the link is lost and DigitizerError for any other failure.
        """
        self._check_owner()
        return self._configured_reader("read").read_batch(max_events, max_wait_s)

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
