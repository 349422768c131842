"""The errors of the Lake Shore 325 driver: each names the instrument, the message and what to check."""

from __future__ import annotations


class LakeShoreError(RuntimeError):
    """The controller refused or did not answer; `command` names the message."""

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class LakeShoreTimeoutError(LakeShoreError):
    """No reply to a query: wrong address or port, or the 325 rejected the query (it stays silent)."""


class LakeShoreRejectedError(LakeShoreError):
    """*ESR? reports a command error (CME) or an execution error (EXE) after a command."""


class LakeShoreProtocolError(LakeShoreError):
    """A reply that does not fit its query (garbage, a stale or split line): never used as the answer.

    `reply` is the line received. The driver resynchronises the stream before its next message.
    """

    def __init__(self, message: str, command: str = "", reply: str = "") -> None:
        super().__init__(message, command)
        self.reply = reply


class LakeShoreReadbackError(LakeShoreError):
    """A setting was accepted (*ESR? clear) but reads back different: the 325 clamped or ignored it."""

    def __init__(self, message: str, command: str, parameter: str, sent: object, read: object) -> None:
        super().__init__(message, command)
        self.parameter = parameter
        self.sent = sent
        self.read = read


class LakeShoreBackendError(LakeShoreError):
    """The VISA backend for the resource is missing (e.g. GPIB without linux-gpib's library)."""
