"""The campaign journal: a line per finished step on disk, a torn last line ignored, a damaged one refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daq.campaign_journal import JOURNAL_NAME, Journal, JournalError, read_journal


def _entry(step: str, status: str = "done") -> dict:
    return {"step": step, "status": status, "fingerprint": f"fp-{step}", "run_file": f"runs/{step}.h5"}


def test_appended_steps_are_read_back_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append(_entry("a"))
    journal.append(_entry("b", "failed"))
    records, good = read_journal(tmp_path / JOURNAL_NAME)
    assert [(r.step, r.status, r.run_file) for r in records] == [
        ("a", "done", "runs/a.h5"),
        ("b", "failed", "runs/b.h5"),
    ]
    assert good == (tmp_path / JOURNAL_NAME).stat().st_size
    assert set(Journal(tmp_path).finished()) == {"a", "b"}


@pytest.mark.parametrize("torn", ['{"step": "c", "stat', '{"step": "c"}\n', "\x00\x00\x00"])
def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path, torn: str) -> None:
    journal = Journal(tmp_path)
    journal.append(_entry("a"))
    with open(tmp_path / JOURNAL_NAME, "a") as f:
        f.write(torn)  # killed in the middle of writing step c's line
    resumed = Journal(tmp_path)
    assert list(resumed.finished()) == ["a"]
    resumed.append(_entry("c"))
    lines = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == ["a", "c"]


def test_a_whole_record_that_lost_only_its_newline_is_kept(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_NAME).write_text(json.dumps(_entry("a")))
    journal = Journal(tmp_path)
    assert list(journal.finished()) == ["a"]
    journal.append(_entry("b"))
    assert [r.step for r in read_journal(tmp_path / JOURNAL_NAME)[0]] == ["a", "b"]


def test_a_bad_line_before_the_last_is_refused_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    path.write_text(json.dumps(_entry("a")) + "\nnot json\n" + json.dumps(_entry("b")) + "\n")
    with pytest.raises(JournalError, match=r"line 2 is not a journal record.*new output_dir"):
        Journal(tmp_path)
