"""The typed errors of the NDT1470 driver: one class per way a request can fail."""

from __future__ import annotations

from typing import Any


class Ndt1470Error(RuntimeError):
    """The NDT1470 refused or failed a command; `command` is the request that failed."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class Ndt1470CommandError(Ndt1470Error):
    """CMD:ERR: the command is malformed or not recognised."""


class Ndt1470ChannelError(Ndt1470Error):
    """CH:ERR: the channel is missing or out of range."""


class Ndt1470ParameterError(Ndt1470Error):
    """PAR:ERR: the parameter is missing or not recognised."""


class Ndt1470ValueError(Ndt1470Error):
    """VAL:ERR: the unit found the value below its minimum or above its maximum."""


class Ndt1470LocalModeError(Ndt1470Error):
    """LOC:ERR: the supply is in LOCAL mode and refuses every SET."""


class Ndt1470TimeoutError(Ndt1470Error):
    """No reply: wrong board address, port or cable, or the unit is off."""


class Ndt1470ProtocolError(Ndt1470Error):
    """A reply that is not this command's answer: garbage, a partial line, another board, another command's reply."""


class Ndt1470SafetyError(Ndt1470Error):
    """Refused by the driver before anything was sent (a voltage above the configured limit, wrong polarity)."""


class Ndt1470RangeError(Ndt1470SafetyError, ValueError):
    """Refused by the driver before anything was sent: outside the parameter's range or choices."""


class Ndt1470ReadbackError(Ndt1470Error):
    """A SET was acknowledged but reading the parameter back shows another value (clamped or ignored).

    channel: the channel (None for a board parameter); sent: the VAL sent; read: what was read back.
    """

    def __init__(self, message: str, command: str, channel: int | None, sent: str, read: Any) -> None:
        super().__init__(message, command)
        self.channel, self.sent, self.read = channel, sent, read


class Ndt1470UnconfirmedError(Ndt1470ReadbackError):
    """A SET got no usable acknowledgement and the read-back does not show it took (or could not be read)."""


class Ndt1470TripError(Ndt1470Error):
    """A channel tripped, was killed or interlocked while the driver waited for it."""


ERROR_REPLIES: dict[str, type[Ndt1470Error]] = {
    "CMD": Ndt1470CommandError,
    "CH": Ndt1470ChannelError,
    "PAR": Ndt1470ParameterError,
    "VAL": Ndt1470ValueError,
    "LOC": Ndt1470LocalModeError,
}
