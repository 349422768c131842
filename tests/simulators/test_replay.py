"""Replay sources and the DT5751 simulator playing them, through the real driver."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest

from daq.config import RunConfig
from daq.engine import RunEngine
from drivers import ChannelSettings, DigitizerError, DigitizerSettings, Dt5751, EventBatch
from simulators.dt5751_replay import ReplayAcquisition
from simulators.physics_settings import PhysicsSettings
from simulators.replay_runfile import RunFileSource
from simulators.replay_source import ReplayError, open_replay_source
from simulators.replay_wavedump import WaveDumpSource
from tests.shared_data import WAVEDUMP_SIPM, needs_wavedump_sample

ROOT = Path(__file__).resolve().parents[2]
REAL = WAVEDUMP_SIPM
needs_real = needs_wavedump_sample
RECORD = 2002  # samples (a multiple of 7, as the x751 records)
# a replay's baseline is the recorded one: the DC offset is given explicitly, as daq replay does
SETTINGS = DigitizerSettings(
    channels={
        0: ChannelSettings(self_trigger=True, dc_offset_pct=50.0),
        2: ChannelSettings(dc_offset_pct=50.0),
    },
    record_length_samples=RECORD,
    post_trigger_samples=1600,
)


def _record(directory: Path, events: int, rate_hz: float = 1000.0, seed: int = 5) -> Path:
    """A simulated run (2 channels, short records) recorded by the engine as fast as the simulator goes."""
    data = RunConfig().model_dump()
    data["run"].update(output_dir=str(directory), events=events, slow_control=False)
    data["digitizer"].update(SETTINGS.model_dump())
    data["simulation"].update(pace="max", seed=seed, rate_hz=rate_hz)
    data["analysis"].update(
        baseline_samples=(0, 350), signal_samples=(350, RECORD), spe_window_ns=(1600, RECORD)
    )
    engine = RunEngine(RunConfig.model_validate(data))
    engine.start()
    assert engine.wait(timeout_s=60)
    path = engine.status().path
    assert path is not None
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _record(tmp_path_factory.mktemp("recorded"), events=3000)


def _events_in(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return int(f["events/waveform"].shape[0])


def _read_all(board: Dt5751, max_wait_s: float = 0.1) -> tuple[list[EventBatch], list[float]]:
    """Every batch up to the end of the data, and the wall time each non-empty one came back."""
    batches, walls = [], []
    while True:
        batch = board.read_batch(256, max_wait_s)
        if len(batch):
            batches.append(batch)
            walls.append(time.monotonic())
        if batch.end_of_run:
            return batches, walls


def _replay(path: Path, speed: float | None, settings: DigitizerSettings = SETTINGS):
    source = open_replay_source(path)
    acquisition = ReplayAcquisition(source, speed)
    board = Dt5751.open("sim://dt5751", replay=acquisition)
    board.configure(settings)
    board.arm()
    return board, acquisition, source


def test_max_speed_replay_gives_every_recorded_event_exactly(recorded: Path) -> None:
    board, acquisition, source = _replay(recorded, None)
    with board:
        batches, _ = _read_all(board)
        assert board.end_signal == "STOP" and board.lost_triggers_total == 0
    source.close()
    with h5py.File(recorded, "r") as f:
        assert np.array_equal(np.concatenate([b.waveforms for b in batches]), f["events/waveform"][()])
        assert np.array_equal(np.concatenate([b.timestamp_ns for b in batches]), f["events/timestamp_ns"][()])
        assert np.array_equal(np.concatenate([b.trigger_id for b in batches]), f["events/trigger_id"][()])
        assert batches[0].channels == (0, 2) and acquisition.played == f["events/waveform"].shape[0]
    # the baseline measurement used software triggers on recorded pre-trigger samples, not recorded events
    effective = board.effective_settings
    assert effective.serial == "REPLAY" and effective.record_length_samples == RECORD
    assert abs(effective.channels[0].baseline_adc - np.median(batches[0].waveforms[:, 0, :300])) < 2


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_scaled_replay_keeps_the_recorded_rate_within_2_percent(recorded: Path, speed: float) -> None:
    board, acquisition, source = _replay(recorded, speed)
    with board:
        batches, walls = _read_all(board, max_wait_s=0.005)
    source.close()
    with h5py.File(recorded, "r") as f:
        ts = f["events/timestamp_ns"][()].astype(np.float64)
    assert sum(len(b) for b in batches) == len(ts)
    n_after_first = len(ts) - len(batches[0])
    recorded_hz = (len(ts) - 1) / ((ts[-1] - ts[0]) * 1e-9)
    # events after the first batch, over the time from the first batch to the last
    replayed_hz = n_after_first / (walls[-1] - walls[0])
    assert replayed_hz == pytest.approx(recorded_hz * speed, rel=0.02)
    assert acquisition.lost_memory_full == 0 and board.lost_triggers_total == 0


def test_a_reader_too_slow_for_the_replay_loses_events_as_the_board_does(recorded: Path) -> None:
    source = open_replay_source(recorded)
    acquisition = ReplayAcquisition(source, speed=50.0)  # 50 kHz of 2002-sample records
    with Dt5751.open("sim://dt5751?memory_events=16", replay=acquisition) as board:  # a small memory
        board.configure(SETTINGS)
        board.arm()
        got = 0
        while True:
            batch = board.read_batch(8, 0.05)
            got += len(batch)
            time.sleep(0.01)
            if batch.end_of_run:
                break
        assert acquisition.lost_memory_full > 0
        # seen as gaps of the trigger IDs, except losses after the last event read (no later ID shows them)
        assert 0 < board.lost_triggers_total <= acquisition.lost_memory_full
    source.close()
    assert got == acquisition.played and got + acquisition.lost_memory_full == _events_in(recorded)


def test_the_board_refuses_settings_the_recording_cannot_serve(recorded: Path) -> None:
    source = open_replay_source(recorded)
    with Dt5751.open("sim://dt5751", replay=ReplayAcquisition(source)) as board:
        with pytest.raises(DigitizerError, match="records of 2002 samples, the board is set to 4004"):
            board.configure(SETTINGS.model_copy(update={"record_length_samples": 4004}))
        wrong = DigitizerSettings(
            channels={1: ChannelSettings(self_trigger=True)},
            record_length_samples=RECORD,
            post_trigger_samples=1600,
        )
        with pytest.raises(DigitizerError, match=r"channel\(s\) \[1\] enabled.*channels \[0, 2\] only"):
            board.configure(wrong)
    source.close()


def test_no_trigger_source_no_recorded_event(recorded: Path) -> None:
    channels = {0: ChannelSettings(dc_offset_pct=50.0), 2: ChannelSettings(dc_offset_pct=50.0)}
    settings = SETTINGS.model_copy(update={"channels": channels})
    board, acquisition, source = _replay(recorded, None, settings)
    with board:
        assert len(board.read_batch(16, 0.1)) == 0 and acquisition.played == 0
    source.close()


def test_a_killed_run_file_is_replayed_up_to_its_last_event(recorded: Path, tmp_path: Path) -> None:
    copy = tmp_path / "killed.h5"
    copy.write_bytes(recorded.read_bytes())
    with h5py.File(copy, "r+") as f:
        f.attrs["stopped_at"] = ""
        f.attrs["complete"] = False
    old = time.time() - 3600
    os.utime(copy, (old, old))
    source = open_replay_source(copy)
    assert isinstance(source, RunFileSource) and not source.following
    assert any("no end record" in m for m in source.notes.messages)
    n = 0
    while (chunk := source.read(1000)) is not None:
        n += len(chunk)
    assert n == _events_in(recorded)
    source.close()


def test_neither_run_file_nor_wavedump_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="no such file"):
        open_replay_source(tmp_path / "nothing.h5")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ReplayError, match="neither an HDF5 run file nor WaveDump output"):
        open_replay_source(tmp_path / "notes.txt")


# ---------------------------------------------------------------------------------------------- WaveDump


def _event(samples: np.ndarray, channel: int, counter: int, ttt: int) -> bytes:
    head = struct.pack("<6I", 24 + 2 * len(samples), 7, 0, channel, counter, ttt)
    return head + samples.astype("<u2").tobytes()


def test_wavedump_channels_merge_with_polarity_and_dc_offset_from_the_config(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n, samples = 40, 77
    waves = {ch: 800 + rng.integers(-2, 3, size=(n, samples)) for ch in (0, 1)}
    for ch in (0, 1):
        waves[ch][:, 50:55] -= [100, 60, 30, 10, 5]  # negative pulses peaking at sample 50
        ttt = [(2**31 - 5000 + 1000 * k) % 2**31 for k in range(n)]  # rolls over in the middle
        (tmp_path / f"wave{ch}.dat").write_bytes(
            b"".join(_event(waves[ch][k], ch, k, ttt[k]) for k in range(n))
        )
    (tmp_path / "WaveDumpConfig.txt").write_text(
        "[COMMON]\nOUTPUT_FILE_FORMAT BINARY\nOUTPUT_FILE_HEADER YES\nPULSE_POLARITY NEGATIVE\n"
        "[0]\nENABLE_INPUT YES\nBASELINE_LEVEL 80\n[1]\nENABLE_INPUT YES\nDC_OFFSET 20\n"
    )
    source = open_replay_source(tmp_path)
    assert isinstance(source, WaveDumpSource)
    g = source.geometry
    assert g.channels == (0, 1) and g.record_length_samples == samples and g.polarity == "negative"
    assert g.dc_offset_pct == {0: 80.0, 1: 70.0} and g.post_trigger_samples == samples - 50
    chunk = source.read(100)
    assert chunk is not None and source.read(100) is None
    assert np.array_equal(chunk.waveforms[:, 1, :], waves[1])
    assert np.all(np.diff(chunk.timestamp_ns.astype(np.int64)) == 8000)  # the roll-over is undone


def test_wavedump_record_length_change_stops_with_a_clear_error(tmp_path: Path) -> None:
    data = b"".join(_event(np.full(14 if k < 3 else 21, 500), 0, k, k) for k in range(6))
    (tmp_path / "wave0.dat").write_bytes(data)
    source = WaveDumpSource(tmp_path / "wave0.dat")
    assert len(source.read(10) or []) == 3
    with pytest.raises(ReplayError, match="record length changes from 14 to 21"):
        source.read(10)


@needs_real
def test_the_real_dt5751_wavedump_file_replays_with_its_counts_samples_and_time_tags() -> None:
    raw = (REAL / "wave0.dat").read_bytes()
    n_whole = len(raw) // 836
    headers = np.frombuffer(raw[: n_whole * 836], np.uint8).reshape(n_whole, 836)[:, :24].copy().view("<u4")
    source = open_replay_source(REAL)
    assert source.geometry.record_length_samples == 406 and source.geometry.channels == (2,)
    acquisition = ReplayAcquisition(source)
    assert source.geometry.dc_offset_pct == {2: 10.0}  # BASELINE_LEVEL 10 of WaveDumpConfig.txt
    settings = DigitizerSettings(
        channels={2: ChannelSettings(self_trigger=True, dc_offset_pct=10.0)},
        record_length_samples=406,
        post_trigger_samples=source.geometry.post_trigger_samples,
        polarity=source.geometry.polarity,
    )
    with Dt5751.open("sim://dt5751", replay=acquisition) as board:
        board.configure(settings)
        board.arm()
        batches, _ = _read_all(board)
    source.close()
    assert any("cut short (812 of 836 bytes)" in m for m in source.notes.messages)  # the truncated tail
    ts = np.concatenate([b.timestamp_ns for b in batches])
    assert len(ts) == n_whole == 293
    assert all(b.n_samples == 406 for b in batches)
    assert np.array_equal((ts // 8) % 2**31, headers[:, 5] & 0x7FFFFFFF)  # the trigger time tags
    assert np.array_equal(np.concatenate([b.trigger_id for b in batches]), headers[:, 4] % 2**24)
    samples = np.frombuffer(raw[: n_whole * 836], np.uint8).reshape(n_whole, 836)[:, 24:].copy().view("<u2")
    assert np.array_equal(np.concatenate([b.waveforms[:, 0, :] for b in batches]), samples)


def test_headerless_wavedump_has_no_time_tags_and_plays_at_max_speed_whatever_was_asked(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(8)
    waves = 500 + rng.integers(-1, 2, size=(3000, 70))
    waves[:, 20] += 80
    (tmp_path / "wave0.dat").write_bytes(waves.astype("<u2").tobytes())
    with pytest.raises(ReplayError, match="--no-header --record-length"):
        open_replay_source(tmp_path / "wave0.dat")  # read as headed: refused, and the CLI options are named
    source = open_replay_source(tmp_path / "wave0.dat", record_length=70, header=False)
    assert not source.geometry.has_time_tags and source.geometry.polarity == "positive"
    assert any("no trigger time tags" in m for m in source.notes.messages)
    acquisition = ReplayAcquisition(source, speed=1.0)
    settings = DigitizerSettings(
        channels={0: ChannelSettings(self_trigger=True, dc_offset_pct=50.0)},
        record_length_samples=70,
        post_trigger_samples=source.geometry.post_trigger_samples,
        polarity="positive",
    )
    with Dt5751.open("sim://dt5751", replay=acquisition) as board:
        board.configure(settings)
        board.arm()
        batches, _ = _read_all(board)
    source.close()
    assert (
        acquisition.speed is None and acquisition.lost_memory_full == 0
    )  # not all released at t = 0 and lost
    assert np.array_equal(np.concatenate([b.waveforms[:, 0, :] for b in batches]), waves)


@pytest.mark.parametrize(("noise_adc", "refused"), [(3.0, False), (20.0, True)])
def test_baseline_measurement_takes_a_noisy_input_but_refuses_a_wild_one(
    noise_adc: float, refused: bool
) -> None:
    physics = PhysicsSettings(pace="max", seed=2, noise_rms_adc=noise_adc, channel_sources=("noise",) * 4)
    with Dt5751.open("sim://dt5751", physics=physics) as board:
        if refused:
            with pytest.raises(DigitizerError, match="more than 64 ADC from the baseline"):
                board.configure(DigitizerSettings(channels={0: ChannelSettings(self_trigger=True)}))
        else:
            effective = board.configure(DigitizerSettings(channels={0: ChannelSettings(self_trigger=True)}))
            assert effective.channels[0].baseline_rms_adc == pytest.approx(noise_adc, rel=0.1)
