"""How a simulated DT5751 departs from the ideal board: each real-board behaviour the driver must survive, on demand.

Every option is also a `sim://dt5751?...` query key (e.g. `sim://dt5751?send_stop=false&record_extra_samples=6`).
The defaults are what we expect of the real DT5751 (DIGITIZER.md): a WaveDump-direction DC offset with
a few % of gain and offset error, a 31-bit x 8 ns trigger time tag that wraps every 17.18 s, no
extended time tag, the record length read back as delivered, and STOP after the last event.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Dt5751Faults(BaseModel):
    """Options of the simulated board that model the real one's quirks and faults.

    dc_offset_direction: "wavedump": a high CH_DCOFFSET puts the baseline LOW (baseline =
        1023 (1 - offset/100), as WaveDump predicts); "inverted": a high offset puts it high.
    dc_offset_gain: slope of the DC offset DAC relative to nominal, about mid-scale (0.96 = 4 % low).
    dc_offset_error_adc: offset error of the DAC, ADC counts, added to every baseline.
    timestamp_wrap: the trigger time tag wraps (31 bits x 8 ns, or 48 bits with EXTRAS_OPT_TT48);
        False: a 64-bit count that never wraps.
    has_extended_time_tag: the tree has /par/EXTRAS_OPT (EXTRAS_OPT_NONE, EXTRAS_OPT_TT48) [A: unverified
        on the x751]; without it the driver must unwrap the 31-bit tag.
    record_extra_samples: samples the board records beyond what RECLEN reads back (a real DT5751 asked
        for 400 delivered 406: 6), 0-1000.
    send_stop: read_data raises STOP once after a disarm and the drained memory; False: only TIMEOUT.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dc_offset_direction: Literal["wavedump", "inverted"] = "wavedump"
    dc_offset_gain: float = Field(default=0.96, ge=0.5, le=1.5)
    dc_offset_error_adc: float = Field(default=14.0, ge=-200.0, le=200.0)
    timestamp_wrap: bool = True
    has_extended_time_tag: bool = False
    record_extra_samples: int = Field(default=0, ge=0, le=1000)
    send_stop: bool = True

    def baseline_adc(self, dc_offset_pct: float, adc_max: int) -> float:
        """Baseline (ADC) that `dc_offset_pct` gives, before the channel's own pedestal."""
        fraction = dc_offset_pct / 100.0
        nominal = (1.0 - fraction) * adc_max if self.dc_offset_direction == "wavedump" else fraction * adc_max
        middle = adc_max / 2.0
        return middle + (nominal - middle) * self.dc_offset_gain + self.dc_offset_error_adc
