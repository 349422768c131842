"""Pure-CsI scintillation versus temperature: light yield LY(T) and decay components (PHYSICS.md section 3)."""

from __future__ import annotations

import numpy as np

# LY / LY_max below 70 K, interpolated linearly (PHYSICS.md 3.1, with the extra points 30, 50, 70 K).
# Below 3 K, the table's lowest point, the 3 K values are held (no data; the cryostat's floor is 2.8 K).
_LOW_T_K = np.array([3.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0])
_LOW_T_LY = np.array([0.55, 0.85, 1.00, 0.96, 0.92, 0.885, 0.86, 0.835])
MODEL_MIN_K = 2.5  # the cryostat's whole range (its cold head's floor is 2.8 K) ...
MODEL_MAX_K = 350.0  # ... to above room temperature
_REFERENCE_T_K = 77.0
_ROOM_DECAY_NS = (6.0, 28.0)  # Amsler, room temperature


class CrystalTemperatureError(ValueError):
    """The crystal's temperature lies outside the physics model; the message names it and the range."""


def check_temperature(temperature_k: float) -> None:
    """Raise CrystalTemperatureError unless temperature_k is within MODEL_MIN_K-MODEL_MAX_K (2.5-350 K)."""
    if not MODEL_MIN_K <= temperature_k <= MODEL_MAX_K:
        raise CrystalTemperatureError(
            f"the simulated crystal's temperature {temperature_k:.4g} K is outside the physics model's "
            f"{MODEL_MIN_K:g}-{MODEL_MAX_K:g} K (simulators/csi_crystal.py, PHYSICS.md 3.1): set "
            f"simulation.temperature_k (or the sim:// URL's temperature_k) within it, or keep the simulated "
            f"cryostat there"
        )


def _quenching(temperature_k: float) -> float:
    """Single-activation quenching q(T) = 1 / (1 + 452 exp(-1002 K / T))."""
    return 1.0 / (1.0 + 452.0 * np.exp(-1002.0 / temperature_k))


def relative_light_yield(temperature_k: float) -> float:
    """Return LY(T) / LY_max, the paper's shape: maximum 1.0 near 20 K, 0.833 at 77 K, 0.053 at 293 K.

    temperature_k: 2.5-350 K (below 3 K the 3 K value, 0.55, is held). Raises CrystalTemperatureError
    (a ValueError) outside.
    """
    check_temperature(temperature_k)
    if temperature_k < 70.0:
        return float(np.interp(temperature_k, _LOW_T_K, _LOW_T_LY))
    return 0.835 * _quenching(temperature_k)


def light_yield_scale(temperature_k: float) -> float:
    """Return LY(T) / LY(77 K): 1.20 at 20 K, 1.0 at 77 K, 0.063 at 293 K."""
    return relative_light_yield(temperature_k) / relative_light_yield(_REFERENCE_T_K)


def decay_components(
    temperature_k: float, decay_ns: tuple[float, ...], fraction: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the (time constants ns, fractions) at `temperature_k` given the 77 K components.

    Below 77 K the constants are held (down to 2.5 K); above, they shrink as q(T)/q(77 K) (Mott-type
    quenching), and above 180 K the room-temperature 6 ns and 28 ns components are mixed in linearly,
    reaching all of the light at 293 K (weights are an assumption, PHYSICS.md 3.2).
    Raises CrystalTemperatureError outside 2.5-350 K.
    """
    check_temperature(temperature_k)
    taus = np.asarray(decay_ns, dtype=np.float64)
    fracs = np.asarray(fraction, dtype=np.float64)
    if temperature_k > _REFERENCE_T_K:
        taus = taus * (_quenching(temperature_k) / _quenching(_REFERENCE_T_K))
    room_weight = float(np.clip((temperature_k - 180.0) / (293.0 - 180.0), 0.0, 1.0))
    if room_weight > 0.0:
        taus = np.concatenate([taus, np.asarray(_ROOM_DECAY_NS)])
        fracs = np.concatenate([fracs * (1.0 - room_weight), np.full(2, room_weight / 2.0)])
    return taus, fracs
