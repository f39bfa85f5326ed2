"""A bounded schemathesis run against the live OpenAPI schema, as an agent and as a supervisor.

The real ASGI app runs in a uvicorn subprocess on loopback over this test's database (SQLite or
PostgreSQL, whichever the suite runs on — so CI covers both), with the demo data loaded. Checks:
no server error on any operation, and every documented response matches its schema. Bounded by
examples per operation and a time budget; any finding fails the test with schemathesis' report.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from tests.conftest import api_token
from tests.servers import running_server, server_env

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
STARTUP_DEADLINE = 40.0
CHECKS = "not_a_server_error,response_schema_conformance"
# Per role: examples per operation and a wall-clock budget (the run stops there, and passes if clean).
MAX_EXAMPLES = 15
MAX_SECONDS = 45
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def api_server(demo: dict[str, Any], ids_config: Path, tmp_path: Path) -> Iterator[str]:
    # After ids_config: the server's own task worker must not race the test's fixture building.
    """uvicorn on 127.0.0.1 over the test database; stopped before the database is flushed."""
    env = server_env(CONVERSA_EMBEDDED_WORKER="1", CONVERSA_WORKER_INTERVAL="0.2",
                     # The files the test uploads are where the server looks for them.
                     MEDIA_ROOT=str(settings.MEDIA_ROOT))
    with running_server(env=env, logs=tmp_path, ready_path="/healthz/", deadline=STARTUP_DEADLINE) as url:
        yield url


@pytest.fixture
def ids_config(api: Any, customer_says: Any, tmp_path: Path) -> Path:
    config = tmp_path / "schemathesis.toml"
    config.write_text(real_ids_config(api, customer_says))
    return config


def real_ids_config(api: Any, customer_says: Any) -> str:
    """schemathesis.toml pointing each operation's `{id}` at a real object agent1 works on (her
    conversation, its contact, campaign, line and a media message), so generated bodies reach the
    handlers instead of stopping at 404."""
    conversation = customer_says("Hola", phone="+5491155550777")
    agent = api("agent1")
    assert agent.post(f"/api/v1/conversations/{conversation.pk}/capture/").status_code == 200
    identified = agent.post(f"/api/v1/conversations/{conversation.pk}/identify/", {"first_name": "Fuzz"},
                            format="json")
    assert identified.status_code == 200, identified.content
    upload = agent.post(f"/api/v1/conversations/{conversation.pk}/messages/",
                        {"file": io.BytesIO(PNG)}, format="multipart")
    assert upload.status_code == 201, upload.content
    conversation.refresh_from_db()
    ids = [("^/api/v1/conversations/\\{", conversation.pk), ("^/api/v1/contacts/", conversation.contact_id),
           ("^/api/v1/campaigns/", conversation.campaign_id), ("^/api/v1/lines/", conversation.line_id),
           ("^/api/v1/messages/", upload.json()["id"])]
    # TOML literal strings ('...'): the regexes keep their backslashes.
    return "".join(f"[[operations]]\ninclude-path-regex = '{regex}'\nparameters = {{ \"path.id\" = {pk} }}\n\n"
                   for regex, pk in ids)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("username", ["agent1", "supervisor"])
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(api_server: str, ids_config: Path,
                                                                   username: str, tmp_path: Path) -> None:
    command = [
        str(SCHEMATHESIS), "--config-file", str(ids_config), "run", f"{api_server}/api/schema/",
        "--checks", CHECKS,
        "--header", f"Authorization: Token {api_token(username)}",
        "--max-examples", str(MAX_EXAMPLES),
        "--max-time", str(MAX_SECONDS),
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",
        "--seed", "15",
        "--request-timeout", "20",
        # Logging in with generated credentials would only exercise the lockout, and lock out the demo.
        "--exclude-path", "/api/v1/auth/token/",
        "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path / "report"),
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=380,
                            env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    output = result.stdout + result.stderr
    print(output[-6000:])
    assert result.returncode == 0, f"schemathesis as {username} found problems:\n{output[-15000:]}"
    assert "No issues found" in output or "passed" in output, output[-3000:]
