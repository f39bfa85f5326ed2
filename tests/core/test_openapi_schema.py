"""The OpenAPI schema is valid and generates without a warning (an unnamed enum collision, an
operation spectacular cannot read...): clients generate code from it."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.core.management import call_command


def test_schema_is_valid_and_has_no_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yml"
    # --fail-on-warn raises SchemaGenerationError on any warning; --validate checks the OpenAPI spec.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schemas = yaml.safe_load(target.read_text())["components"]["schemas"]
    # The agent's presence status (POST /api/v1/me/status/) has its own name, not a numbered one.
    assert schemas["AgentStatusEnum"]["enum"] == ["offline", "ready", "paused"]
    assert not [name for name in schemas if name.startswith("Status") and name.endswith("Enum")]
