from __future__ import annotations

import os
import time
import uuid

from hitl.service.ids import new_id


def test_ids_are_version_7_uuids_carrying_the_time() -> None:
    before = time.time_ns() // 1_000_000
    text = new_id()
    after = time.time_ns() // 1_000_000
    value = uuid.UUID(text)
    assert str(value) == text
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_ids_are_unique_and_later_ones_sort_after() -> None:
    first = [new_id() for _ in range(2000)]  # more than one 4 KiB chunk of randomness
    assert len(set(first)) == len(first)
    time.sleep(0.002)
    later = new_id()
    assert all(later > earlier for earlier in first)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent now holds unused random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    parent = new_id()
    assert uuid.UUID(child).version == 7
    assert child[14:] != parent[14:]  # the random parts differ
