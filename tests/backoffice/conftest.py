from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client


@pytest.fixture
def admin_client(demo: dict[str, Any]) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    return client
