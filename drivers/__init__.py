"""Instrument drivers: the same code talks to the hardware and to any registered stand-in (never imports simulators)."""

from drivers.dt5751 import Dt5751
from drivers.dt5751_errors import DigitizerError, DigitizerLinkError, FelibNotAvailableError
from drivers.dt5751_settings import ChannelSettings, DigitizerSettings, EffectiveChannel, EffectiveSettings
from drivers.dt5751_urls import connect_node, register_url_scheme, registered_schemes, unregister_url_scheme
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
    "register_url_scheme",
    "registered_schemes",
    "unregister_url_scheme",
]
