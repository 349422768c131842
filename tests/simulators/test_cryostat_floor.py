"""The thermal model never goes below its cold head's base temperature (the physics model covers it)."""

from __future__ import annotations

import pytest

from simulators.cryostat_thermal import COLD_HEAD_BASE_K, CryostatModel, ThermalSettings
from simulators.csi_crystal import MODEL_MIN_K, light_yield_scale


@pytest.mark.parametrize("settings", [{}, {"g_link_w_per_k": 5.0}, {"stage2_scale": 2.0}])
def test_free_cooling_ends_at_the_cold_heads_base_and_never_below(settings: dict[str, float]) -> None:
    model = CryostatModel(ThermalSettings(**settings))
    coldest = 293.0
    for _ in range(12 * 60):  # twelve hours, cooler on, heater off
        model.step(60.0, 0.0)
        coldest = min(coldest, model.shield_k, model.head_k, model.plate_k, model.crystal_k)
    assert coldest >= COLD_HEAD_BASE_K == 2.8
    assert model.crystal_k == pytest.approx(COLD_HEAD_BASE_K, abs=0.05)
    assert light_yield_scale(model.crystal_k) > 0  # inside the physics model: no fault


def test_a_node_set_below_the_base_is_brought_back_to_it() -> None:
    model = CryostatModel()
    model.shield_k, model.head_k, model.plate_k, model.crystal_k = 40.0, 2.0, 2.0, 2.0
    model.step(1.0, 0.0)
    assert min(model.head_k, model.plate_k, model.crystal_k) >= COLD_HEAD_BASE_K > MODEL_MIN_K
