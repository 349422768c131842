"""Instrument drivers: the same code talks to the hardware and to the simulators."""

from drivers.dt5751 import (
    DigitizerError,
    DigitizerLinkError,
    Dt5751,
    FelibNotAvailableError,
    connect_node,
)
from drivers.dt5751_settings import ChannelSettings, DigitizerSettings, EffectiveChannel, EffectiveSettings
from drivers.event_batch import EventBatch
from drivers.felib_types import ErrorCode, FelibError

__all__ = [
    "ChannelSettings",
    "DigitizerError",
    "DigitizerLinkError",
    "DigitizerSettings",
    "Dt5751",
    "EffectiveChannel",
    "EffectiveSettings",
    "ErrorCode",
    "EventBatch",
    "FelibError",
    "FelibNotAvailableError",
    "connect_node",
]
