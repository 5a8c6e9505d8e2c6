from __future__ import annotations

from hitl.service.states import FINAL, TRANSITIONS, TaskStatus, can_move, sources


def test_every_status_has_its_arrows() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)


def test_final_states_have_no_way_out() -> None:
    for status in FINAL:
        assert TRANSITIONS[status] == frozenset()
        assert not any(can_move(status, target) for target in TaskStatus)


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


def test_sources_are_the_where_clause() -> None:
    assert sources(TaskStatus.CANCELLED) == {
        TaskStatus.QUEUED,
        TaskStatus.RUNNING,
        TaskStatus.WAITING_FOR_REVIEW,
    }
    assert sources(TaskStatus.COMPLETED) == {TaskStatus.RUNNING}
    assert sources(TaskStatus.WAITING_FOR_REVIEW) == {TaskStatus.RUNNING}
