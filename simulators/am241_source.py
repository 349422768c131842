"""Energy deposits in the CsI crystal from an Am-241 source, the environment and muons (PHYSICS.md 2.6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.physics_settings import PhysicsSettings

# LNHB/KRI 2009 Am-241 photon lines: (name, keV, intensity per 100 decays).
LINES: tuple[tuple[str, float, float], ...] = (
    ("Np Ll", 11.89, 0.844),
    ("Np La", 13.852, 13.02),
    ("Np Ln", 15.876, 0.384),
    ("Np Lb", 16.96, 18.58),
    ("Np Lg", 21.16, 4.83),
    ("gamma 26.34", 26.3446, 2.31),
    ("gamma 33.20", 33.196, 0.12),
    ("gamma 43.42", 43.42, 0.067),
    ("gamma 59.54", 59.5409, 35.92),
)
GAMMA_59_KEV = 59.5409
_L_XRAY = [(e, i) for name, e, i in LINES if name.startswith("Np L")]
# K-shell escape after a 59.54 keV absorption: deposit keV and relative probability (normal incidence).
_K_ESCAPE = (
    (28.57, 3.2),
    (30.93, 2.4),
    (28.92, 1.7),
    (31.22, 1.3),
    (27.27, 0.8),
    (24.58, 0.4),
    (26.50, 0.15),
    (23.72, 0.11),
)
_MUON_DEPOSIT_KEV = 11_200.0  # 2 cm of CsI at 5.6 MeV/cm

# Process codes stored with every simulated event (truth).
PROCESS_NAMES: tuple[str, ...] = (
    *(name for name, _, _ in LINES),
    "K-escape",
    "L-escape",
    "sum 59.54+L",
    "other X/e",
    "environment",
    "muon",
)
P_LINE_59 = len(LINES) - 1
P_K_ESCAPE, P_L_ESCAPE, P_SUM, P_OTHER, P_ENVIRONMENT, P_MUON = range(len(LINES), len(LINES) + 6)


@dataclass(frozen=True)
class Deposits:
    """Energies deposited by a chunk of interactions, with the process that made each one."""

    energy_kev: np.ndarray  # float64 (n,)
    process: np.ndarray  # int8 (n,), index into PROCESS_NAMES


class Am241Source:
    """Draw interactions in the crystal: Am-241 lines with escape and sum peaks, other X-rays, background."""

    def __init__(self, settings: PhysicsSettings) -> None:
        self._s = settings
        line_rates = np.array([i for _, _, i in LINES]) * np.asarray(settings.line_transmission)
        other = settings.other_xray_fraction * LINES[P_LINE_59][2]
        source = np.append(line_rates, other)
        source = source / source.sum() * settings.rate_hz
        self.total_rate_hz = float(settings.rate_hz + settings.environment_rate_hz + settings.muon_rate_hz)
        # categories: the 9 lines, other X/e, environment, muon
        rates = np.concatenate([source, [settings.environment_rate_hz, settings.muon_rate_hz]])
        self._category_cdf = np.cumsum(rates) / rates.sum()
        self._line_kev = np.array([e for _, e, _ in LINES])
        k = np.array(_K_ESCAPE)
        self._k_kev = k[:, 0]
        self._k_cdf = np.cumsum(k[:, 1]) / k[:, 1].sum()
        lx = np.array(_L_XRAY)
        self._l_kev = lx[:, 0]
        self._l_cdf = np.cumsum(lx[:, 1]) / lx[:, 1].sum()

    def draw(self, rng: np.random.Generator, n: int) -> Deposits:
        """Draw `n` interactions in arrival order."""
        s = self._s
        category = np.searchsorted(self._category_cdf, rng.random(n), side="right")
        category = np.minimum(category, len(self._category_cdf) - 1)
        energy = np.zeros(n)
        process = np.empty(n, dtype=np.int8)
        is_line = category < len(LINES)
        energy[is_line] = self._line_kev[category[is_line]]
        process[is_line] = category[is_line]
        # the 59.54 keV gamma: full absorption, K-escape, L-escape or summed with a Np L X-ray
        idx59 = np.flatnonzero(category == P_LINE_59)
        u = rng.random(idx59.size)
        k_cut = s.k_escape_fraction
        l_cut = k_cut + s.l_escape_fraction
        sum_cut = l_cut + s.sum_fraction
        k_idx = idx59[u < k_cut]
        energy[k_idx] = self._k_kev[np.searchsorted(self._k_cdf, rng.random(k_idx.size), side="right")]
        process[k_idx] = P_K_ESCAPE
        l_idx = idx59[(u >= k_cut) & (u < l_cut)]
        energy[l_idx] = GAMMA_59_KEV - rng.uniform(3.9, 4.6, l_idx.size)
        process[l_idx] = P_L_ESCAPE
        s_idx = idx59[(u >= l_cut) & (u < sum_cut)]
        energy[s_idx] = (
            GAMMA_59_KEV + self._l_kev[np.searchsorted(self._l_cdf, rng.random(s_idx.size), side="right")]
        )
        process[s_idx] = P_SUM
        other = np.flatnonzero(category == len(LINES))
        energy[other] = rng.uniform(3.0, 25.0, other.size)
        process[other] = P_OTHER
        env = np.flatnonzero(category == len(LINES) + 1)
        flat = rng.random(env.size) < 0.5
        slope = 3.0 + rng.exponential(50.0, env.size)
        slope = np.where(slope > 200.0, rng.uniform(3.0, 200.0, env.size), slope)
        energy[env] = np.where(flat, rng.uniform(3.0, 200.0, env.size), slope)
        process[env] = P_ENVIRONMENT
        muon = np.flatnonzero(category == len(LINES) + 2)
        energy[muon] = _MUON_DEPOSIT_KEV * rng.uniform(1.0, 1.6, muon.size)
        process[muon] = P_MUON
        return Deposits(energy_kev=energy, process=process)
