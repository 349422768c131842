"""Lumped thermal model of the cryostat (INSTRUMENTS.md 2.9): shield, cold head, copper plate, CsI crystal.

Four nodes with Debye heat capacities, the two-stage cold head's capacity maps, radiation, the
plate-to-cold-head link and the crystal contact; the heater power comes from outside (the Lake
Shore 325's loop). Integrated by linearly implicit Euler steps of at most 1 s (stable at any step),
halved where a node would move more than max(0.5 K, 10 %) in one.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
from scipy.integrate import quad

_R_GAS = 8.314
_SIGMA = 5.670e-8


def _debye_table(
    theta_k: float, atoms: int, molar_kg: float, gamma_mj: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Specific heat J/(kg K) on a grid of temperatures 1-400 K (Debye plus electronic term)."""
    grid = np.geomspace(1.0, 400.0, 200)
    c = []
    for t in grid:
        x = theta_k / t
        integral = quad(lambda u: u**4 * np.exp(-u) / np.expm1(-u) ** 2, 0.0, x)[0]  # no overflow
        c.append((9 * atoms * _R_GAS * (t / theta_k) ** 3 * integral + gamma_mj * 1e-3 * t) / molar_kg)
    return grid, np.asarray(c)


_CU = _debye_table(343.0, 1, 0.063546, 0.695)
_AL = _debye_table(428.0, 1, 0.026982, 1.35)
_CSI = _debye_table(124.0, 2, 0.2598)
_Q2 = (
    np.array([2.8, 4.2, 6, 10, 20, 30, 50, 77, 120, 200, 300]),
    np.array([0, 1, 3, 7, 14, 20, 30, 40, 50, 60, 65.0]),
)
_Q1 = (np.array([25, 35, 43, 60, 100, 200, 300.0]), np.array([0, 20, 40, 60, 90, 120, 130.0]))
COLD_HEAD_BASE_K = float(_Q2[0][0])  # the second stage lifts no heat below this: no node ever gets colder


MIN_STEP_S = 1e-4  # a step this short is always taken


class Table:
    """A curve y(x) interpolated linearly and held flat outside its range, like np.interp, but in plain
    Python: the model calls it some 10,000 times per second of a fast-forwarded cooldown, and numpy's
    per-call overhead on scalars (several us each) made the simulator hold the GIL for tens of ms per poll."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = [float(v) for v in x], [float(v) for v in y]

    def __call__(self, t: float) -> float:
        x, y = self.x, self.y
        if t != t:
            return t  # NaN in, NaN out (as np.interp)
        if t <= x[0]:
            return y[0]
        if t >= x[-1]:
            return y[-1]
        i = bisect_right(x, t)
        return y[i - 1] + (y[i] - y[i - 1]) * (t - x[i - 1]) / (x[i] - x[i - 1])

    def with_slope(self, t: float) -> tuple[float, float]:
        """y(t) and dy/dx at t (0 outside the curve, where it is held flat), with one search."""
        x, y = self.x, self.y
        if not x[0] < t < x[-1]:
            return self(t), 0.0
        i = bisect_right(x, t)
        slope = (y[i] - y[i - 1]) / (x[i] - x[i - 1])
        return y[i - 1] + slope * (t - x[i - 1]), slope


_CU_C, _AL_C, _CSI_C = Table(*_CU), Table(*_AL), Table(*_CSI)
_Q1_W, _Q2_W = Table(*_Q1), Table(*_Q2)


@dataclass
class ThermalSettings:
    """Masses (kg), couplings (W/K), radiating areas (m2) and emissivities; defaults of INSTRUMENTS.md 2.9."""

    shield_kg: float = 3.0
    head_kg: float = 0.3
    plate_kg: float = 1.5
    crystal_kg: float = 1.0
    g_link_w_per_k: float = 0.5
    g_crystal_w_per_k: float = 0.15
    stage2_scale: float = 1.0
    shield_area_m2: float = 0.3
    shield_emissivity: float = 0.03
    plate_area_m2: float = 0.05
    crystal_area_m2: float = 0.03
    inner_emissivity: float = 0.05
    room_k: float = 293.0
    extra_load_w: float = 0.0  # e.g. a cold PMT divider, 0.15 W
    max_step_s: float = 1.0


class CryostatModel:
    """Temperatures of the four nodes; step(dt, heater_w) advances them."""

    def __init__(self, settings: ThermalSettings | None = None, start_k: float = 293.0) -> None:
        self.s = settings or ThermalSettings()
        self.shield_k = self.head_k = self.plate_k = self.crystal_k = start_k
        self.cooler_on = True
        self.time_s = 0.0
        self._step_s = self.s.max_step_s  # the step to try next (see step())

    def _advance(self, h: float, heater_w: float) -> bool:
        """One linearly implicit Euler step of h seconds; False (and nothing changed) if it moves a node by
        more than max(0.5 K, 10 %): the capacities are those of the step's start, and from a few kelvin
        they grow ~T^3, so a long step from cold would overstate a warming many times over.

        Explicit steps must stay below 0.3 C / sum G, and copper's heat capacity falls ~4000 times from
        300 K to 4 K: at the 2.8 K floor that meant ~0.02 s steps, 50,000 per simulated 1000 s, a third of
        a core at a cooldown's time scale (holding the GIL). Here the conductive couplings (cold head, link,
        plate, contact, crystal) and the cold-head capacities linearised at the present temperatures are
        taken at the end of the step (a tridiagonal 3x3 solve), so any step is stable; radiation, a small
        term, stays explicit. Above ~20 K the result is that of the explicit steps (INSTRUMENTS.md 2.9's
        cooldown table is reproduced to 0.01 h).
        """
        s = self.s
        t1, t2, tp, tx = self.shield_k, self.head_k, self.plate_k, self.crystal_k
        on = 1.0 if self.cooler_on else 0.0
        rad_in = _SIGMA * s.shield_area_m2 * s.shield_emissivity * (s.room_k**4 - t1**4)
        rad_plate = _SIGMA * s.plate_area_m2 * s.inner_emissivity * (t1**4 - tp**4)
        rad_crystal = _SIGMA * s.crystal_area_m2 * s.inner_emissivity * (t1**4 - tx**4)
        q1, k1 = _Q1_W.with_slope(t1)
        q2, k2 = _Q2_W.with_slope(t2)
        q1, k1 = on * q1, on * k1
        q2, k2 = on * s.stage2_scale * q2, on * s.stage2_scale * k2
        gl, gx = s.g_link_w_per_k, s.g_crystal_w_per_k
        c1 = s.shield_kg * _AL_C(t1) / h
        c2 = s.head_kg * _CU_C(t2) / h
        cp = s.plate_kg * _CU_C(tp) / h
        cx = s.crystal_kg * _CSI_C(tx) / h
        # shield: c1 (T1' - T1) = rad_in - rad_plate - rad_crystal - q1 - k1 (T1' - T1)
        new_1 = t1 + (rad_in - rad_plate - rad_crystal - q1) / (c1 + k1)
        # head, plate, crystal: A T' = b with A tridiagonal (Thomas algorithm)
        a2, b2, r2 = c2 + gl + k2, -gl, c2 * t2 - q2 + k2 * t2
        ap, bp, rp = cp + gl + gx, -gx, cp * tp + heater_w + rad_plate + s.extra_load_w
        ax, rx = cx + gx, cx * tx + rad_crystal
        # eliminate the head from the plate's row, then the plate from the crystal's
        ap -= gl * gl / a2  # (-gl) * b2 / a2 with b2 = -gl
        rp += gl * r2 / a2
        ax -= gx * gx / ap
        rx += gx * rp / ap
        new_x = rx / ax
        new_p = (rp - bp * new_x) / ap
        new_2 = (r2 - b2 * new_p) / a2
        floor = COLD_HEAD_BASE_K  # nothing here is colder than the coldest stage
        new = (max(floor, new_1), max(floor, new_2), max(floor, new_p), max(floor, new_x))
        old = (t1, t2, tp, tx)
        if h > MIN_STEP_S and any(abs(n - o) > max(0.5, 0.1 * o) for n, o in zip(new, old, strict=True)):
            return False
        self.shield_k, self.head_k, self.plate_k, self.crystal_k = new
        return True

    def step(self, dt_s: float, heater_w: float) -> None:
        """Advance by dt_s seconds with `heater_w` on the plate: steps of at most max_step_s, halved where
        a node would move too far in one (warming from cold) and doubled again after each step taken."""
        left = dt_s
        while left > 1e-9:
            h = min(left, self.s.max_step_s, self._step_s)
            while not self._advance(h, heater_w):
                h /= 2
            self._step_s = min(self.s.max_step_s, 2 * h)
            self.time_s += h
            left -= h
