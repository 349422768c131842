"""The DT5751 driver survives each real-board fault of the simulator: offset direction, wrapping time tag,
odd record length, no STOP; and the sim:// opener is registered from outside drivers/."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from daq.digitizer_urls import register_simulated_dt5751
from drivers import (
    ChannelSettings,
    DigitizerError,
    DigitizerSettings,
    Dt5751,
    dt5751_readout,
    unregister_url_scheme,
)
from simulators import board_of

DRIVERS = Path(__file__).resolve().parents[2] / "drivers"


@pytest.mark.parametrize("direction", ["wavedump", "inverted"])
@pytest.mark.parametrize(("gain", "error_adc"), [(1.0, 0.0), (0.95, 25.0), (1.04, -18.0)])
def test_the_baseline_lands_on_its_target_whichever_the_offset_direction_and_gain(
    direction: str, gain: float, error_adc: float
) -> None:
    url = f"sim://dt5751?seed=6&pace=max&dc_offset_direction={direction}&dc_offset_gain={gain}&dc_offset_error_adc={error_adc}"
    settings = DigitizerSettings(
        channels={0: ChannelSettings(self_trigger=True), 1: ChannelSettings(baseline_adc=600)}
    )
    with Dt5751.open(url) as board:
        effective = board.configure(settings)
        truth = board_of(board._root).board_setup().baseline_adc
    sign = -1.0 if direction == "wavedump" else 1.0
    for ch, target in ((0, 921.0), (1, 600.0)):
        c = effective.channels[ch]
        assert abs(c.baseline_adc - target) <= 1.5 and c.baseline_adc == pytest.approx(truth[ch], abs=0.1)
        assert c.dc_offset_slope_adc_per_pct == pytest.approx(sign * 10.23 * gain, rel=0.01)
        assert (c.dc_offset_source, c.baseline_target_adc) == ("baseline_adc", target)
    assert effective.channels[0].threshold_absolute_adc == round(effective.channels[0].baseline_adc) - 30


@pytest.mark.parametrize("direction", ["wavedump", "inverted"])
def test_a_target_the_offset_cannot_reach_is_refused_naming_the_channel(direction: str) -> None:
    url = f"sim://dt5751?seed=6&pace=max&dc_offset_direction={direction}&dc_offset_error_adc=-14"
    settings = DigitizerSettings(channels={0: ChannelSettings(self_trigger=True, baseline_adc=1005)})
    with (
        Dt5751.open(url) as board,
        pytest.raises(DigitizerError, match=r"channel 0: baseline_adc 1005 cannot be reached"),
    ):
        board.configure(settings)


def test_an_explicit_offset_wins_and_an_old_88_percent_on_a_wavedump_board_is_refused() -> None:
    with Dt5751.open("sim://dt5751?seed=6&pace=max") as board:
        explicit = DigitizerSettings(
            baseline_adc=700, channels={0: ChannelSettings(self_trigger=True, dc_offset_pct=20.0)}
        )
        c = board.configure(explicit).channels[0]
        assert (c.dc_offset_pct, c.dc_offset_source) == (20.0, "dc_offset_pct") and np.isnan(
            c.dc_offset_slope_adc_per_pct
        )
        old = DigitizerSettings(channels={0: ChannelSettings(self_trigger=True, dc_offset_pct=88.0)})
        with pytest.raises(
            DigitizerError, match=r"channel 0: the baseline sits at .* from the 0 rail.*would clip"
        ):
            board.configure(old)


def test_settings_refuse_both_ways_on_one_channel_and_a_target_without_pulse_room() -> None:
    with pytest.raises(ValueError, match="baseline_adc .* or dc_offset_pct .* not both"):
        ChannelSettings(baseline_adc=900, dc_offset_pct=10)
    with pytest.raises(ValueError, match="channel 0: baseline_adc 300 leaves 300 ADC for negative pulses"):
        DigitizerSettings(baseline_adc=300)
    assert DigitizerSettings(polarity="positive").baseline_target_adc(0) == 102


def _read_run(url: str, n_events: int) -> tuple[np.ndarray, Dt5751]:
    board = Dt5751.open(url)
    board.configure(DigitizerSettings(record_length_samples=1000, post_trigger_samples=800))
    board.arm()
    stamps = []
    while sum(map(len, stamps)) < n_events:
        stamps.append(board.read_batch(n_events, max_wait_s=5.0).timestamp_ns)
    board.close()
    return np.concatenate(stamps).astype(np.int64), board


def test_wrapping_time_tag_is_unwrapped_into_the_board_s_true_times() -> None:
    base = "sim://dt5751?seed=8&pace=max&rate_hz=3"  # ~4 triggers per board second: 150 events span ~40 s
    wrapped, board = _read_run(base, 150)
    plain, _ = _read_run(base + "&timestamp_wrap=false", 150)
    assert plain[-1] > 2 * (8 << 31)  # at least two wraps of the 31-bit x 8 ns tag
    assert np.array_equal(wrapped, plain) and np.all(np.diff(wrapped) > 0)
    assert (
        board.effective_settings.timestamp_wrap_ns == 8 << 31
        and not board.effective_settings.extended_time_tag
    )


def test_the_extended_time_tag_is_enabled_where_the_simulated_board_has_it() -> None:
    with Dt5751.open("sim://dt5751?seed=8&pace=max&has_extended_time_tag=true") as board:
        effective = board.configure(DigitizerSettings())
        assert effective.extended_time_tag and effective.timestamp_wrap_ns == 8 << 48
        assert board_of(board._root).par("EXTRAS_OPT") == "EXTRAS_OPT_TT48"


def test_an_odd_record_length_is_adopted_with_the_trigger_where_the_board_puts_it() -> None:
    with Dt5751.open("sim://dt5751?seed=8&pace=max&record_extra_samples=6") as board:
        eff = board.configure(DigitizerSettings())
        assert (eff.record_length_samples, eff.record_length_readback_samples) == (8007, 8001)
        assert board._reader is not None and board._reader.row_samples >= 1_799_990  # the longest RECLEN
        board.arm()
        batch = board.read_batch(50, max_wait_s=5.0)
    pre, level = eff.pre_trigger_samples, eff.channels[0].threshold_absolute_adc
    assert batch.waveforms.shape == (50, 1, 8007) and pre == 8007 - 6400
    assert np.all(batch.waveforms[:, 0, pre] <= level) and np.all(batch.waveforms[:, 0, pre - 1] > level)


def test_without_stop_the_run_ends_on_the_status_register_not_on_a_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dt5751_readout, "END_OF_RUN_SILENCE_S", 1e6)  # the fallback would never end it
    with Dt5751.open("sim://dt5751?seed=8&pace=max&send_stop=false") as board:
        board.configure(DigitizerSettings())  # three baseline measurements end the same way
        truth = board_of(board._root).acquisition
        made_before = truth.records_made
        board.arm()
        read = len(board.read_batch(40, max_wait_s=5.0))
        board.disarm()
        for _ in range(10):
            batch = board.read_batch(1000, max_wait_s=0.05)
            read += len(batch)
            if batch.end_of_run:
                break
        assert batch.end_of_run and board.end_signal == "EMPTY"
        assert read == board.events_read_total == truth.records_made - made_before  # nothing left behind


def test_sim_urls_open_only_once_registered_from_outside_drivers() -> None:
    unregister_url_scheme("sim")
    try:
        with pytest.raises(DigitizerError, match=r"Unsupported DT5751 URL.*register_simulated_dt5751"):
            Dt5751.open("sim://dt5751")
    finally:
        register_simulated_dt5751()
    Dt5751.open("sim://dt5751").close()


def test_no_module_in_drivers_imports_simulators() -> None:
    offenders = []
    for path in sorted(DRIVERS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] == "simulators"]
    assert len(list(DRIVERS.glob("*.py"))) > 5 and not offenders, offenders
