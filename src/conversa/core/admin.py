"""Admin building blocks shared by the apps."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class NoAddOrChange:
    """Records written only by the application (logs, samples): staff view them, and may delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnly(NoAddOrChange):
    """No add, change or delete from the admin: staff see the records (view permission) only."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
