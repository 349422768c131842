"""The campaign journal: one JSON line per finished step, appended with flush + fsync, read back to resume."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"


class JournalError(ValueError):
    """The journal cannot be read or does not match the scan file; the message says what to do."""


@dataclass(frozen=True)
class StepRecord:
    """A finished step as the journal holds it."""

    step: str
    status: str  # "done", "failed" or "skipped"
    fingerprint: str
    run_file: str | None
    data: dict[str, Any]


def read_journal(path: Path) -> tuple[list[StepRecord], int]:
    """The records of the journal at `path`, and the byte length of the part holding them.

    A torn last line (the program killed while writing it) is ignored with a warning; a bad line before
    the last means the file was damaged otherwise, and raises JournalError naming the line.
    """
    if not path.exists():
        return [], 0
    raw = path.read_bytes()
    records: list[StepRecord] = []
    good = 0
    lines = raw.split(b"\n")
    last_text = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            good += len(line) + (1 if i < len(lines) - 1 else 0)
            continue
        try:
            entry = json.loads(line)
            record = StepRecord(
                entry["step"], entry["status"], entry["fingerprint"], entry.get("run_file"), entry
            )
        except (ValueError, KeyError, TypeError) as exc:
            if i == last_text:
                log.warning("%s: ignoring the torn last line %d (%s)", path, i + 1, exc)
                break
            raise JournalError(
                f"{path}: line {i + 1} is not a journal record ({exc}); the journal is damaged: move it "
                f"away and start the campaign in a new output_dir, or delete the bad line by hand"
            ) from None
        records.append(record)
        good += len(line) + (1 if i < len(lines) - 1 else 0)
    return records, good


class Journal:
    """Append finished steps to DIR/journal.jsonl; each line is on disk (fsync) before the next step starts."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / JOURNAL_NAME
        self.records, good = read_journal(self.path)
        if self.path.exists():
            with open(self.path, "r+b") as f:  # drop a torn tail so the next line starts clean
                f.truncate(good)
                if good and (f.seek(good - 1), f.read(1))[1] != b"\n":
                    f.write(b"\n")  # a whole record that lost only its newline
                f.flush()
                os.fsync(f.fileno())

    def finished(self) -> dict[str, StepRecord]:
        return {r.step: r for r in self.records}

    def append(self, entry: dict[str, Any]) -> StepRecord:
        """Write one record (step, status, fingerprint, run_file, ...) as a line, flushed and fsynced."""
        line = json.dumps(entry, allow_nan=False, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        record = StepRecord(
            entry["step"], entry["status"], entry["fingerprint"], entry.get("run_file"), entry
        )
        self.records.append(record)
        return record
