"""The exceptions of the DT5751 driver: what failed on the board, a lost link, missing CAEN libraries."""

from __future__ import annotations

from drivers.felib_types import ErrorCode


class DigitizerError(RuntimeError):
    """A DT5751 operation failed; the message names the board, the call and what to do."""

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class DigitizerLinkError(DigitizerError):
    """The link to the board is lost (FELib COMMUNICATION_ERROR): the run must stop."""


class FelibNotAvailableError(DigitizerError):
    """caen_felib or CAEN's native libraries are not installed on this machine."""
