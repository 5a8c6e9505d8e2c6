from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.helpers import dispose_engines


@pytest.fixture(scope="session", autouse=True)
def _close_database_reads() -> Iterator[None]:
    """Close the connections `db_rows` kept, before the PostgreSQL server goes away."""
    yield
    dispose_engines()
