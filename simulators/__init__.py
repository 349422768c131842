"""Stand-ins for the test-stand hardware: the DT5751 device tree with its physics model (more to come)."""

from simulators.dt5751 import SimulatedDt5751, board_of, connect, parse_sim_url
from simulators.physics_settings import PhysicsSettings

__all__ = ["PhysicsSettings", "SimulatedDt5751", "board_of", "connect", "parse_sim_url"]
