"""The DT5751 driver against the simulated board's device tree: configure, arm, read, stop, errors."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from drivers import (
    ChannelSettings,
    DigitizerError,
    DigitizerLinkError,
    DigitizerSettings,
    Dt5751,
    ErrorCode,
    FelibNotAvailableError,
)
from simulators import PhysicsSettings, board_of


class FakeClock:
    """Injectable time: sleep() moves it forward instantly."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += max(0.0, seconds)


@pytest.fixture
def board() -> Dt5751:
    with Dt5751.open("sim://dt5751?seed=11&pace=max") as b:
        yield b


def test_configure_reads_back_rounded_record_length_and_relative_threshold(board: Dt5751) -> None:
    eff = board.configure(DigitizerSettings())
    assert (eff.model, eff.adc_bits, eff.sampling_rate_msps) == ("DT5751", 10, 1000.0)
    assert eff.record_length_samples == 8001  # 8000 rounded up to a multiple of 7
    assert eff.post_trigger_samples == 6400 and eff.pre_trigger_samples == 1601
    assert eff.self_trigger_edge == "FALL" and eff.trigger_count_all
    ch0 = eff.channels[0]
    true_baseline = board_of(board._root).board_setup().baseline_adc[0]  # the simulated board's own level
    assert ch0.baseline_adc == pytest.approx(true_baseline, abs=0.05)
    assert abs(ch0.baseline_adc - 921) <= 6 and ch0.dc_offset_source == "baseline_adc"  # the default target
    assert ch0.baseline_rms_adc == pytest.approx(
        np.sqrt(PhysicsSettings().noise_rms_adc ** 2 + 1 / 12), rel=0.05
    )
    assert ch0.threshold_absolute_adc == round(ch0.baseline_adc) - 30
    assert board_of(board._root).ch_par(0, "CH_THRESHOLD") == str(ch0.threshold_absolute_adc)
    assert eff.enabled_channels == (0,)
    assert not eff.channels[1].enabled


def test_every_record_crosses_the_threshold_first_at_the_trigger_sample(board: Dt5751) -> None:
    eff = board.configure(DigitizerSettings())
    board.arm()
    batch = board.read_batch(200, max_wait_s=5.0)
    assert len(batch) == 200 and batch.lost_triggers == 0
    pre = eff.pre_trigger_samples
    level = eff.channels[0].threshold_absolute_adc
    wf = batch.waveforms[:, 0, :]
    assert np.all(wf[:, pre] <= level)
    assert np.all(wf[:, pre - 1] > level)
    assert np.all(np.diff(batch.trigger_id.astype(np.int64)) == 1)
    assert np.all(np.diff(batch.timestamp_ns.astype(np.int64)) > 0)
    assert wf.min() >= 0 and wf.max() <= 1023


def test_stop_ends_the_run_after_the_buffered_events(board: Dt5751) -> None:
    board.configure(DigitizerSettings())
    truth = board_of(board._root).acquisition
    made_before = truth.records_made  # the software triggers of the baseline measurement
    board.arm()
    assert len(board.read_batch(10)) == 10
    board.disarm()
    board.disarm()  # a second disarm changes nothing
    drained = 0
    for _ in range(5):
        batch = board.read_batch(1000, max_wait_s=0.5)
        drained += len(batch)
        if batch.end_of_run:
            break
    assert batch.end_of_run and board.end_signal == "STOP"
    assert drained + 10 == board.events_read_total == truth.records_made - made_before


def test_a_rising_edge_on_negative_pulses_times_out_instead_of_hanging(board: Dt5751) -> None:
    board.configure(DigitizerSettings(polarity="positive"))  # threshold above the baseline: never reached
    board.arm()
    t0 = time.monotonic()
    batch = board.read_batch(5, max_wait_s=0.3)
    assert len(batch) == 0 and not batch.end_of_run
    assert time.monotonic() - t0 < 2.0


def test_a_rate_beyond_real_time_slows_the_board_clock_instead_of_spiralling(caplog) -> None:
    # ~20k triggers/s of four-channel records: several times what a machine like ours simulates in real time
    with Dt5751.open("sim://dt5751?seed=12&rate_hz=25000") as board:
        channels = {ch: ChannelSettings(self_trigger=(ch == 0)) for ch in range(4)}
        board.configure(DigitizerSettings(channels=channels, baseline_triggers=64))
        board.arm()
        durations = []
        for _ in range(6):
            t0 = time.monotonic()
            board.read_batch(128, max_wait_s=0.1)
            durations.append(time.monotonic() - t0)
        truth = board_of(board._root).acquisition
    assert max(durations) < 1.0, durations
    assert truth.lag_s > 0 and "runs slow" in caplog.text


def test_clipped_baseline_is_refused() -> None:
    with Dt5751.open("sim://dt5751?seed=2&pace=max&dc_offset_gain=1&dc_offset_error_adc=20") as board:
        settings = DigitizerSettings(channels={0: ChannelSettings(dc_offset_pct=0.0, self_trigger=True)})
        with pytest.raises(DigitizerError, match=r"channel 0: .* at the ADC limit .*dc_offset_pct"):
            board.configure(settings)


def test_crystal_temperature_outside_the_model_is_a_clear_error() -> None:
    temperature = {"k": 77.0}
    with Dt5751.open("sim://dt5751?seed=2&pace=max", temperature_k=lambda: temperature["k"]) as board:
        board.configure(DigitizerSettings())
        board.arm()
        temperature["k"] = 1.0
        with pytest.raises(DigitizerError, match=r"simulated crystal: .*temperature 1(\.0)? K is outside"):
            while True:
                board.read_batch(256)


def test_four_channels_all_read_with_the_crystal_on_channel_0(board: Dt5751) -> None:
    chans = {ch: ChannelSettings(self_trigger=(ch == 0)) for ch in range(4)}
    eff = board.configure(DigitizerSettings(channels=chans))
    assert eff.enabled_channels == (0, 1, 2, 3)
    board.arm()
    batch = board.read_batch(20)
    assert batch.waveforms.shape == (20, 4, 8001) and batch.channels == (0, 1, 2, 3)
    heights = eff.channels[0].baseline_adc - batch.waveforms[:, 0, :].min(axis=1)
    assert np.all(heights >= 30)
    for j in (1, 2, 3):  # noise-only inputs: flat around their own baselines
        others = batch.waveforms[:, j, :].astype(float)
        assert np.abs(others - eff.channels[j].baseline_adc).max() < 6


def test_realtime_reader_that_falls_behind_loses_events_counted_by_trigger_id() -> None:
    clock = FakeClock()
    with Dt5751.open("sim://dt5751?seed=5&rate_hz=500", clock=clock, sleep=clock.sleep) as board:
        board.configure(DigitizerSettings())
        board.arm()
        truth = board_of(board._root).acquisition
        clock.now_s += 2.0  # two seconds without reading: ~1000 triggers, 128 fit in the board's memory
        assert board.memory_full()
        first = board.read_batch(truth.capacity, max_wait_s=1.0)
        assert len(first) == truth.capacity == 128
        assert first.memory_full_seen and first.lost_triggers == 0  # the stored events are the first 128
        assert list(first.trigger_id) == list(range(128))
        later = board.read_batch(10, max_wait_s=1.0)  # the next stored event shows the gap
        assert len(later) == 10 and later.lost_triggers == truth.lost_memory_full > 700
        assert int(later.trigger_id[0]) == 128 + truth.lost_memory_full
        board.disarm()
        read = len(first) + len(later)
        while not (batch := board.read_batch(1000, max_wait_s=0.2)).end_of_run:
            read += len(batch)
        read += len(batch)
        assert board.lost_triggers_total == truth.lost_memory_full
        assert read + truth.lost_memory_full == truth.trigger_counter  # every trigger read or counted lost


def test_owner_thread_is_enforced(board: Dt5751) -> None:
    errors: list[BaseException] = []
    thread = threading.Thread(
        target=lambda: errors.append(pytest.raises(RuntimeError, board.memory_full).value)
    )
    thread.start()
    thread.join()
    assert "owned by the thread that opened it" in str(errors[0])


def test_baseline_too_low_for_the_threshold_is_an_error_not_a_clip(board: Dt5751) -> None:
    # WaveDump direction: 100 % puts the baseline at its lowest (~37 ADC); 50 ADC below it is off the scale
    channel = ChannelSettings(self_trigger=True, dc_offset_pct=100.0, threshold_adc=50)
    settings = DigitizerSettings(channels={0: channel}, pulse_range_adc=0)
    with pytest.raises(DigitizerError, match=r"channel 0: baseline .* outside 0-1023.*dc_offset_pct"):
        board.configure(settings)


def test_value_refused_by_the_board_names_the_allowed_range(board: Dt5751) -> None:
    settings = DigitizerSettings(record_length_samples=1_800_000, post_trigger_samples=100)
    with pytest.raises(DigitizerError, match=r"refused /par/RECLEN = '1800000'.*maxvalue 1.79999e\+06"):
        board.configure(settings)


@pytest.mark.parametrize("failing_call", ["CAEN_FELib_ReadData", "CAEN_FELib_GetUserRegister"])
def test_lost_link_is_reported_as_a_link_error(board: Dt5751, failing_call: str) -> None:
    board.configure(DigitizerSettings())
    board.arm()
    tree = board_of(board._root).tree
    tree.fault = ErrorCode.COMMUNICATION_ERROR
    tree.fault_functions = {failing_call}
    with pytest.raises(DigitizerLinkError, match=f"COMMUNICATION_ERROR in {failing_call}.*cable"):
        board.read_batch(10)


def test_start_mode_s_in_waits_for_the_start_signal() -> None:
    with Dt5751.open("sim://dt5751?seed=2&pace=max") as board:
        board.configure(DigitizerSettings(start_mode="s_in"))
        board.arm()
        assert len(board.read_batch(5, max_wait_s=0.05)) == 0
        board_of(board._root).pulse_s_in()
        assert len(board.read_batch(5, max_wait_s=1.0)) == 5


def test_real_board_without_caen_libraries_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "caen_felib", None)  # as if the package were not installed
    with pytest.raises(FelibNotAvailableError, match=r"caen-felib is not installed.*sim://dt5751"):
        Dt5751.open("dig1://caen.internal/usb?link_num=0")


def test_real_board_without_native_library_names_libcaen_felib() -> None:
    try:
        import caen_felib  # noqa: F401
    except ImportError:
        pytest.skip("caen-felib is not installed here")
    except (RuntimeError, OSError):
        pass
    else:
        pytest.skip("CAEN FELib is installed on this machine")
    with pytest.raises(FelibNotAvailableError, match=r"libCAEN_FELib.so.*sim://dt5751"):
        Dt5751.open("dig1://caen.internal/usb?link_num=0")


def test_unknown_url_scheme_and_bad_simulator_option_are_clear_errors() -> None:
    with pytest.raises(DigitizerError, match="Unsupported DT5751 URL.*dig1://.*sim://"):
        Dt5751.open("usb://0")
    with pytest.raises(DigitizerError, match=r"unknown simulator option\(s\) \['bogus'\]"):
        Dt5751.open("sim://dt5751?bogus=1")
    with pytest.raises(DigitizerError, match="rate_hz"):
        Dt5751.open("sim://dt5751?rate_hz=-5")
