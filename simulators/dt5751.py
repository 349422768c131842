"""Simulated CAEN DT5751 (Dig1 standard firmware) behind FELib's node interface, selected by a `sim://` URL.

`connect("sim://dt5751?seed=7&rate_hz=500&pace=max")` returns a root node that the driver
(drivers.dt5751) uses exactly like `caen_felib.device.connect("dig1://...")`. Parameter names,
commands, the scope endpoint, register 0x8104 and the error codes follow DIGITIZER.md; the
waveforms come from the physics model (simulators.pcsi_signal).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationError

from drivers.felib_types import DATA_TYPES, ErrorCode, FelibError
from simulators.dt5751_acquisition import BoardAcquisition
from simulators.dt5751_faults import Dt5751Faults
from simulators.dt5751_replay import ReplayAcquisition
from simulators.felib_tree import DeviceTree, NodeType, ParameterSpec, SimulatedField, SimulatedNode, TreeNode
from simulators.pcsi_signal import BoardSetup, PcsiSignal
from simulators.physics_settings import PhysicsSettings

N_CHANNELS = 4
ADC_MAX = 1023
MEMORY_SAMPLES_PER_CHANNEL = 1_835_008  # 1.8 MS/ch standard memory
RECLEN_MAX_NS = 1_799_994  # largest multiple of 7 that fits
TIME_TAG_TICK_NS = 8
EXTENDED_TIME_TAG = "EXTRAS_OPT_TT48"
_BOOL = ("TRUE", "FALSE")
# fields of the scope endpoint: name -> dimension
SCOPE_FIELDS = {
    "TIMESTAMP": 0,
    "TIMESTAMP_NS": 0,
    "TRIGGER_ID": 0,
    "WAVEFORM": 2,
    "WAVEFORM_SIZE": 1,
    "EXTRA": 0,
    "BOARD_ID": 0,
    "BOARD_FAIL": 0,
    "EVENT_SIZE": 0,
}


def _board_parameters(serial: str, reclen_step: int = 7, extended_tag: bool = False) -> list[ParameterSpec]:
    ro = {"access": "READ_ONLY", "datatype": "STRING"}
    optional = []
    if extended_tag:
        optional.append(
            ParameterSpec(
                "EXTRAS_OPT",
                "EXTRAS_OPT_NONE",
                datatype="STRING",
                allowed=("EXTRAS_OPT_NONE", EXTENDED_TIME_TAG),
                setinrun=False,
                description="[A] extended 48-bit trigger time tag",
            )
        )
    return optional + [
        ParameterSpec(
            "RECLEN",
            "1001",
            minvalue=14,
            maxvalue=RECLEN_MAX_NS,
            increment=reclen_step,
            round_up=True,
            setinrun=False,
            uom="ns",
            description="record length (x751: multiples of 7 samples)",
        ),
        ParameterSpec(
            "POSTTRG",
            "500",
            minvalue=0,
            maxvalue=RECLEN_MAX_NS,
            increment=1,
            setinrun=False,
            uom="ns",
            description="post-trigger",
        ),
        ParameterSpec(
            "STARTMODE",
            "START_MODE_SW",
            datatype="STRING",
            setinrun=False,
            allowed=("START_MODE_SW", "START_MODE_S_IN", "START_MODE_FIRST_TRG"),
        ),
        ParameterSpec("TRG_SW_ENABLE", "TRUE", datatype="STRING", allowed=_BOOL),
        ParameterSpec("TRG_SW_OUT_PROPAGATE", "FALSE", datatype="STRING", allowed=_BOOL),
        ParameterSpec("TRG_EXT_ENABLE", "TRUE", datatype="STRING", allowed=_BOOL),
        ParameterSpec("TRG_EXT_OUT_PROPAGATE", "FALSE", datatype="STRING", allowed=_BOOL),
        ParameterSpec(
            "SELF_TRIGGER_EDGE", "RISE", datatype="STRING", allowed=("RISE", "FALL"), setinrun=False
        ),
        ParameterSpec("TRG_COUNT_ALL", "FALSE", datatype="STRING", allowed=_BOOL, setinrun=False),
        ParameterSpec("IOLEVEL", "FPIOTYPE_NIM", datatype="STRING", allowed=("FPIOTYPE_NIM", "FPIOTYPE_TTL")),
        ParameterSpec("NUMCH", str(N_CHANNELS), **ro),
        ParameterSpec("ADC_NBIT", "10", **ro),
        ParameterSpec("ADC_SAMPLRATE", "1000", uom="MS/s", **ro),
        ParameterSpec("FWTYPE", "WAVEFORM_RECORDING", **ro),
        ParameterSpec("MODELNAME", "DT5751", **ro),
        ParameterSpec("SERIALNUM", serial, **ro),
        ParameterSpec("FAMILYCODE", "XX751", **ro),
        ParameterSpec("FORMFACTOR", "DESKTOP", **ro),
        ParameterSpec("ROC_FWVER", "SIM-04.25", **ro),
        ParameterSpec("AMC_FWVER", "SIM-00.16", **ro),
        ParameterSpec("PLLLOCKED", "TRUE", **ro),
        ParameterSpec("ACQRUNNING", "FALSE", **ro),
        ParameterSpec("MAXRAWDATASIZE", "16777216", **ro),
    ]


def _channel_parameters() -> list[ParameterSpec]:
    return [
        ParameterSpec("CH_ENABLED", "TRUE", datatype="STRING", allowed=_BOOL, setinrun=False),
        ParameterSpec(
            "CH_THRESHOLD",
            "0",
            minvalue=0,
            maxvalue=ADC_MAX,
            increment=1,
            uom="ADC",
            description="absolute self-trigger level, not relative to the baseline",
        ),
        ParameterSpec("CH_DCOFFSET", "50.000", minvalue=0, maxvalue=100, increment=0.1, decimals=3, uom="%"),
        ParameterSpec("CH_TRG_GLOBAL_GEN", "FALSE", datatype="STRING", allowed=_BOOL),
        ParameterSpec("CH_OUT_PROPAGATE", "FALSE", datatype="STRING", allowed=_BOOL),
    ]


def _parameter_node(spec: ParameterSpec) -> TreeNode:
    node = TreeNode(spec.name, NodeType.PARAMETER, spec=spec, value=spec.default)
    for key, text in spec.attributes().items():
        node.add(TreeNode(key, NodeType.ATTRIBUTE, value=text))
    return node


class SimulatedDt5751:
    """One simulated board: the device tree, its settings, and the acquisition behind the scope endpoint."""

    def __init__(
        self,
        physics: PhysicsSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        temperature_k: Callable[[], float] | None = None,
        replay: ReplayAcquisition | None = None,
        faults: Dt5751Faults | None = None,
    ) -> None:
        self.physics = physics
        self.faults = faults or Dt5751Faults()
        self._sleep = sleep
        self.signal: PcsiSignal | None = None
        self.acquisition: BoardAcquisition | ReplayAcquisition
        if replay is None:
            self.signal = PcsiSignal(physics, temperature_k)
            self.acquisition = BoardAcquisition(self.signal, physics.pace, clock, sleep)
        else:  # recorded events instead of the physics model
            self.acquisition = replay
        self.calibrated = False
        self.s_in_pending = False
        self._format: list[SimulatedField] | None = None
        self._registers: dict[int, int] = {}
        root = TreeNode("", NodeType.DIGITIZER)
        self._par = root.add(TreeNode("par", NodeType.FOLDER))
        serial = f"SIM{physics.seed}" if replay is None else "REPLAY"
        reclen_step = 7 if replay is None or replay.source.geometry.record_length_samples % 7 == 0 else 1
        for spec in _board_parameters(serial, reclen_step, self.faults.has_extended_time_tag):
            self._par.add(_parameter_node(spec))
        cmd = root.add(TreeNode("cmd", NodeType.FOLDER))
        for name, action in (
            ("RESET", self._reset),
            ("CALIBRATEADC", self._calibrate),
            ("ARMACQUISITION", self._arm),
            ("DISARMACQUISITION", self.acquisition.disarm),
            ("SENDSWTRIGGER", self._software_trigger),
            ("CLEARDATA", self.acquisition.clear),
        ):
            cmd.add(TreeNode(name, NodeType.COMMAND, on_command=action))
        ch_folder = root.add(TreeNode("ch", NodeType.FOLDER))
        self._channels: list[TreeNode] = []
        for ch in range(N_CHANNELS):
            ch_node = ch_folder.add(TreeNode(str(ch), NodeType.CHANNEL))
            par = ch_node.add(TreeNode("par", NodeType.FOLDER))
            for spec in _channel_parameters():
                par.add(_parameter_node(spec))
            self._channels.append(par)
        endpoint = root.add(TreeNode("endpoint", NodeType.FOLDER))
        ep_par = endpoint.add(TreeNode("par", NodeType.FOLDER))
        ep_par.add(
            _parameter_node(
                ParameterSpec("ACTIVEENDPOINT", "RAW", datatype="STRING", allowed=("RAW", "SCOPE"))
            )
        )
        endpoint.add(TreeNode("scope", NodeType.ENDPOINT, endpoint=self))
        endpoint.add(TreeNode("raw", NodeType.ENDPOINT, endpoint=_RawEndpoint()))
        self._active = ep_par.children["activeendpoint"]
        self.tree = DeviceTree(root)
        self.tree.owner = self
        self.tree.can_set = self._can_set
        self.tree.on_set = self._on_set
        self.tree.on_get = self._on_get
        self.tree.register_read = self._register_read
        self.tree.register_write = self._registers.__setitem__

    # ---- settings ----

    def par(self, name: str) -> str:
        """Current value of a board parameter."""
        return self._par.children[name.lower()].value

    def ch_par(self, ch: int, name: str) -> str:
        """Current value of a channel parameter."""
        return self._channels[ch].children[name.lower()].value

    def _can_set(self, node: TreeNode) -> None:
        assert node.spec is not None
        if self.acquisition.armed and not node.spec.setinrun:
            raise FelibError(
                f"cannot set {node.path} while the acquisition is armed: disarm first",
                ErrorCode.COMMAND_ERROR,
                "CAEN_FELib_SetValue",
            )

    def _on_set(self, node: TreeNode, value: str) -> None:
        if self.acquisition.armed:
            self.acquisition.update_setup(self.board_setup())

    def _on_get(self, node: TreeNode) -> str | None:
        if node.name == "ACQRUNNING":
            return "TRUE" if self.acquisition.running else "FALSE"
        return None

    def board_setup(self) -> BoardSetup:
        """Translate the current parameters into what the signal model needs."""
        reclen = round(float(self.par("RECLEN")))
        post = round(float(self.par("POSTTRG")))
        enabled, baseline, threshold = [], [], []
        for ch in range(N_CHANNELS):
            enabled.append(self.ch_par(ch, "CH_ENABLED") == "TRUE")
            # the DC offset's direction and DAC errors (Dt5751Faults), plus a per-channel pedestal
            baseline.append(
                self.faults.baseline_adc(float(self.ch_par(ch, "CH_DCOFFSET")), ADC_MAX)
                + self.physics.pedestal_offsets_adc[ch]
            )
            gen = self.ch_par(ch, "CH_TRG_GLOBAL_GEN") == "TRUE"
            threshold.append(round(float(self.ch_par(ch, "CH_THRESHOLD"))) if gen else None)
        reclen += self.faults.record_extra_samples  # the board records more than RECLEN reads back
        return BoardSetup(
            record_length=reclen,
            pre_trigger=max(0, reclen - post),
            enabled=tuple(enabled),
            baseline_adc=tuple(baseline),
            threshold_adc=tuple(threshold),
            falling=self.par("SELF_TRIGGER_EDGE") == "FALL",
            calibrated=self.calibrated,
        )

    # ---- commands ----

    def _reset(self) -> None:
        if self.acquisition.armed:
            self.acquisition.disarm()
        for folder in (self._par, *self._channels, self._active.parent):
            assert folder is not None
            for node in folder.children.values():
                if node.spec is not None:
                    node.value = node.spec.default
        self.acquisition.clear()
        self.calibrated = False
        self._format = None

    def _calibrate(self) -> None:
        if self.acquisition.armed:
            raise FelibError(
                "cannot calibrate while armed", ErrorCode.COMMAND_ERROR, "CAEN_FELib_SendCommand"
            )
        self.calibrated = True

    def _arm(self) -> None:
        setup = self.board_setup()
        if not any(setup.enabled):
            raise FelibError("no channel enabled", ErrorCode.COMMAND_ERROR, "CAEN_FELib_SendCommand")
        memory = self.physics.memory_events
        if memory is None:
            fit = max(1, MEMORY_SAMPLES_PER_CHANNEL // setup.record_length)
            memory = 1 << (fit.bit_length() - 1)  # buffers come in powers of two
        mode = self.par("STARTMODE")
        self.acquisition.arm(
            setup, memory, self.par("TRG_COUNT_ALL") == "TRUE", start_now=mode != "START_MODE_S_IN"
        )

    def _software_trigger(self) -> None:
        if self.par("TRG_SW_ENABLE") == "TRUE":
            self.acquisition.software_trigger()

    def pulse_s_in(self) -> None:
        """Simulate a start signal on the front-panel S-IN input."""
        self.acquisition.start()

    def _register_read(self, address: int) -> int:
        if address == 0x8104:
            return self.acquisition.status_register()
        return self._registers.get(address, 0)

    # ---- the scope endpoint ----

    def set_read_data_format(self, fmt: Sequence[Mapping[str, Any]]) -> tuple[SimulatedField, ...]:
        func = "CAEN_FELib_SetReadDataFormat"
        fields = []
        for entry in fmt:
            name = str(entry.get("name", "")).upper()
            dtype = str(entry.get("type", ""))
            dim = int(entry.get("dim", 0))
            shape = list(entry.get("shape", []))
            if name not in SCOPE_FIELDS:
                raise FelibError(
                    f"unknown field '{name}': scope has {', '.join(SCOPE_FIELDS)}",
                    ErrorCode.INVALID_PARAM,
                    func,
                )
            if dtype not in DATA_TYPES:
                raise FelibError(f"unknown type '{dtype}' for field {name}", ErrorCode.INVALID_PARAM, func)
            if dim != SCOPE_FIELDS[name] or len(shape) != dim:
                raise FelibError(
                    f"field {name} has dimension {SCOPE_FIELDS[name]}, not {dim} with shape {shape}",
                    ErrorCode.INVALID_PARAM,
                    func,
                )
            fields.append(SimulatedField(name, dtype, dim, shape))
        self._format = fields
        return tuple(fields)

    def has_data(self, timeout: int) -> None:
        self._check_scope("CAEN_FELib_HasData")
        self.acquisition.wait(timeout)

    def read_data(self, timeout: int, data: Sequence[SimulatedField]) -> None:
        func = "CAEN_FELib_ReadData"
        self._check_scope(func)
        if self._format is None or len(data) != len(self._format):
            raise FelibError(
                "call set_read_data_format before read_data, and pass its fields",
                ErrorCode.COMMAND_ERROR,
                func,
            )
        try:
            self.acquisition.wait(timeout)
        except ValueError as exc:  # the physics model refused its input, e.g. a live temperature out of range
            raise FelibError(f"simulated crystal: {exc}", ErrorCode.GENERIC_ERROR, func) from exc
        except FelibError as exc:
            if exc.code is not ErrorCode.STOP or self.faults.send_stop or self.acquisition.armed:
                raise
            if timeout > 0:  # a board that never signals STOP: the library just times out
                self._sleep(timeout / 1000.0)
            raise FelibError("no event in time", ErrorCode.TIMEOUT, func) from None
        record, event_id = self.acquisition.fifo.popleft()
        assert record.waveform is not None
        setup = self.acquisition.setup
        assert setup is not None
        samples = record.waveform.shape[1]
        n_enabled = sum(setup.enabled)
        for f in data:
            v = f.value
            if f.name == "WAVEFORM":
                if v.shape[0] < N_CHANNELS or v.shape[1] < samples:
                    raise FelibError(
                        f"WAVEFORM buffer {v.shape} cannot hold {N_CHANNELS} x {samples} samples",
                        ErrorCode.INVALID_PARAM,
                        func,
                    )
                acq = self.acquisition
                for ch in range(N_CHANNELS):
                    if setup.enabled[ch]:
                        v[ch, :samples] = record.waveform[acq.row_of(ch)]
            elif f.name == "WAVEFORM_SIZE":
                v[:] = [samples if e else 0 for e in setup.enabled]
            elif f.name == "TIMESTAMP_NS":
                v[...] = self._time_tag_ns(record)
            elif f.name == "TIMESTAMP":
                v[...] = self._time_tag_ns(record) // TIME_TAG_TICK_NS  # 125 MHz trigger time tag
            elif f.name == "TRIGGER_ID":
                v[...] = event_id
            elif f.name == "EVENT_SIZE":
                v[...] = 16 + n_enabled * 4 * ((samples + 2) // 3)  # header + 3 samples per 32-bit word
            else:  # EXTRA, BOARD_ID, BOARD_FAIL
                v[...] = 0

    def _time_tag_ns(self, record: Any) -> int:
        """The trigger time as the board reports it: wrapped at 2^31 (or 2^48, extended) ticks of 8 ns."""
        t_ns = int(self.acquisition.timestamp_ns(record))
        if not self.faults.timestamp_wrap:
            return t_ns
        extended = "extras_opt" in self._par.children and self.par("EXTRAS_OPT") == EXTENDED_TIME_TAG
        return t_ns % (TIME_TAG_TICK_NS << (48 if extended else 31))

    def _check_scope(self, func: str) -> None:
        if self._active.value != "SCOPE":
            raise FelibError(
                f"the active endpoint is {self._active.value}: set /endpoint/par/ACTIVEENDPOINT to scope",
                ErrorCode.COMMAND_ERROR,
                func,
            )


class _RawEndpoint:
    """The raw endpoint exists on the board; decoding CAEN's raw format is not simulated."""

    def _refuse(self, func: str) -> None:
        raise FelibError("the simulator serves the scope endpoint only", ErrorCode.NOT_IMPLEMENTED, func)

    def set_read_data_format(self, fmt: Sequence[Mapping[str, Any]]) -> tuple[SimulatedField, ...]:
        self._refuse("CAEN_FELib_SetReadDataFormat")
        return ()

    def read_data(self, timeout: int, data: Sequence[SimulatedField]) -> None:
        self._refuse("CAEN_FELib_ReadData")

    def has_data(self, timeout: int) -> None:
        self._refuse("CAEN_FELib_HasData")


def _sim_query(url: str) -> dict[str, str]:
    func = "CAEN_FELib_Open"
    parts = urlsplit(url)
    if parts.scheme.lower() != "sim" or parts.netloc.lower() not in ("", "dt5751"):
        raise FelibError(
            f"not a simulated DT5751 URL: {url!r} (use sim://dt5751?seed=1)", ErrorCode.INVALID_PARAM, func
        )
    query = dict(parse_qsl(parts.query, strict_parsing=False))
    unknown = sorted(set(query) - set(PhysicsSettings.model_fields) - set(Dt5751Faults.model_fields))
    if unknown:
        allowed = sorted({*PhysicsSettings.model_fields, *Dt5751Faults.model_fields})
        raise FelibError(
            f"unknown simulator option(s) {unknown} in {url!r}; allowed: {', '.join(allowed)}",
            ErrorCode.INVALID_PARAM,
            func,
        )
    return query


def parse_sim_url(url: str, physics: PhysicsSettings | None = None) -> PhysicsSettings:
    """Return the physics settings for `url`: `physics` (or the defaults) with the URL's query on top.

    `sim://dt5751?seed=3&rate_hz=1000&pace=max`; raises FelibError(INVALID_PARAM) naming a bad key or value.
    """
    query = _sim_query(url)
    overrides = {k: v for k, v in query.items() if k in PhysicsSettings.model_fields}
    try:
        return PhysicsSettings.model_validate({**(physics or PhysicsSettings()).model_dump(), **overrides})
    except ValidationError as exc:
        raise FelibError(
            f"bad simulator option in {url!r}: {exc}", ErrorCode.INVALID_PARAM, "CAEN_FELib_Open"
        ) from None


def parse_sim_faults(url: str, faults: Dt5751Faults | None = None) -> Dt5751Faults:
    """Return the board's faults for `url`: `faults` (or the defaults) with the URL's fault keys on top.

    `sim://dt5751?send_stop=false&dc_offset_direction=inverted`; raises FelibError(INVALID_PARAM).
    """
    query = _sim_query(url)
    overrides = {k: v for k, v in query.items() if k in Dt5751Faults.model_fields}
    try:
        return Dt5751Faults.model_validate({**(faults or Dt5751Faults()).model_dump(), **overrides})
    except ValidationError as exc:
        raise FelibError(
            f"bad simulator option in {url!r}: {exc}", ErrorCode.INVALID_PARAM, "CAEN_FELib_Open"
        ) from None


def connect(
    url: str,
    physics: PhysicsSettings | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    temperature_k: Callable[[], float] | None = None,
    replay: ReplayAcquisition | None = None,
    faults: Dt5751Faults | None = None,
) -> SimulatedNode:
    """Open a simulated DT5751 and return its root node (the twin of caen_felib.device.connect).

    physics: the model's settings, faults: the board's quirks (query keys of the URL override both).
    clock/sleep: injectable time for realtime pace. temperature_k: live crystal temperature (e.g. the
    Lake Shore simulator). replay: play recorded events (simulators.dt5751_replay) instead of the model.
    """
    board = SimulatedDt5751(
        parse_sim_url(url, physics), clock, sleep, temperature_k, replay, parse_sim_faults(url, faults)
    )
    return SimulatedNode(board.tree, board.tree.root)


def board_of(root: SimulatedNode) -> SimulatedDt5751:
    """The simulated board behind a root node (for tests and simulator-only hooks such as S-IN or faults)."""
    board = root.device
    assert isinstance(board, SimulatedDt5751)
    return board
