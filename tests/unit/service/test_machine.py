"""The state machine: one table of transitions, and nothing else that moves a task."""

from __future__ import annotations

import re
from pathlib import Path

from hitl.service import machine
from hitl.service.machine import ALL, FINAL, TRANSITIONS, TaskStatus, can_move

PACKAGE = Path(machine.__file__).resolve().parent.parent


def test_every_status_has_its_arrows() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)


def test_final_states_leave_only_by_retry() -> None:
    assert TRANSITIONS[TaskStatus.COMPLETED] == frozenset()
    assert TRANSITIONS[TaskStatus.CANCELLED] == frozenset()
    assert TRANSITIONS[TaskStatus.FAILED] == {TaskStatus.QUEUED}
    assert machine.RETRY.sources == {TaskStatus.FAILED}
    for status in FINAL:
        assert not any(can_move(status, t) for t in TaskStatus if t != TaskStatus.QUEUED)


def test_the_documented_path_is_allowed() -> None:
    path = [
        TaskStatus.QUEUED,
        TaskStatus.RUNNING,
        TaskStatus.WAITING_FOR_REVIEW,
        TaskStatus.RUNNING,
        TaskStatus.WAITING_FOR_REVIEW,
        TaskStatus.RUNNING,
        TaskStatus.COMPLETED,
    ]
    for a, b in zip(path, path[1:], strict=False):
        assert can_move(a, b), (a, b)


def test_shortcuts_are_refused() -> None:
    assert not can_move(TaskStatus.QUEUED, TaskStatus.COMPLETED)
    assert not can_move(TaskStatus.QUEUED, TaskStatus.WAITING_FOR_REVIEW)
    assert not can_move(TaskStatus.WAITING_FOR_REVIEW, TaskStatus.COMPLETED)
    assert not can_move(TaskStatus.QUEUED, TaskStatus.FAILED)


def test_each_transition_is_one_named_function() -> None:
    names = {t.name for t in ALL}
    assert len(names) == len(ALL)
    for name in names:
        assert callable(getattr(machine, name)), name
    assert machine.CANCEL.expect == ["queued", "running", "waiting_for_review"]


def test_nothing_outside_the_machine_writes_a_task() -> None:
    """Every write to a task's row goes through `hitl.service.machine`: the store offers the
    statements, and only the machine calls them."""
    writes = re.compile(
        r"(?<!machine)\.(update_task|insert_task|claim|expire_leases|update_review|"
        r"insert_review|update_reviews_of)\("
    )
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("store/") or relative == "service/machine.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if writes.search(line):
                offenders.append(f"{relative}:{n}: {line.strip()}")
    assert offenders == []


def test_the_layers_above_the_service_do_not_reach_the_store() -> None:
    above = [PACKAGE / "api", PACKAGE / "web", PACKAGE / "cli", PACKAGE / "app.py"]
    offenders = []
    for root in above:
        for path in sorted([root] if root.is_file() else root.rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"\bhitl\.store\b|\.store\.", line):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert offenders == []
