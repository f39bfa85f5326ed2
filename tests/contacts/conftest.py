from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def _postgres_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres_only") and connection.vendor == "sqlite":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI runs it there)")
