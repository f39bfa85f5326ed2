"""A contact import survives its worker's kill -9 (issue 12): real worker processes on a PostgreSQL
cluster of the test's own; the import queued by `manage.py import_contacts`, its worker killed
mid-file, another worker resuming it from the checkpoint: everyone imported once, every bad row
reported once, and a re-run of the whole file duplicating nobody."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from tests.chaos.conftest import BIN, Deployment, poll
from tests.servers import REPO

pytestmark = pytest.mark.postgres_only
ROWS = 30_000
BAD_EVERY = 100  # every 100th row has no valid phone


def _write_file(path: Path) -> int:
    good = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("phone,first_name,last_name,city\n")
        for n in range(ROWS):
            if n % BAD_EVERY == 0:
                out.write(f"not-a-phone-{n},Bad {n},,Nowhere\n")
            else:
                out.write(f"+5491160{n:06d},Name {n},Last {n},City {n % 7}\n")
                good += 1
    return good


def _env(path: Path) -> dict[str, str]:
    """Small batches (many checkpoints to die between) and the stored upload beside the file."""
    return {"CONVERSA_IMPORT_BATCH": "200", "MEDIA_ROOT": str(path.parent / "media")}


def _import(deployment: Deployment, path: Path, *extra: str) -> dict[str, object]:
    done = subprocess.run([str(BIN / "python"), "manage.py", "import_contacts", "--database", "Sales contacts",
                           "--file", str(path), "--country", "AR", *extra], cwd=REPO, env=deployment.env(**_env(path)),
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def test_an_import_whose_worker_is_killed_resumes_and_duplicates_nobody(deployment: Deployment, tmp_path: Path):
    good = _write_file(tmp_path / "contacts.csv")
    env = _env(tmp_path / "contacts.csv")
    before = deployment.sql("SELECT count(*) FROM contacts_contact")[0][0]
    queued = _import(deployment, tmp_path / "contacts.csv")
    import_id = queued["import"]
    assert queued["status"] == "queued" and queued["total_rows"] == ROWS

    victim, _ = deployment.worker("victim", **env)
    poll("the victim half-way through", lambda: deployment.sql(
        "SELECT rows_done FROM contacts_contactimport WHERE id = %s AND rows_done >= 4000", import_id),
        alive=deployment.check_alive, deadline=120)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    (stopped_at,) = deployment.sql("SELECT rows_done FROM contacts_contactimport WHERE id = %s", import_id)[0]
    assert stopped_at < ROWS, "the import ended before the kill: nothing was interrupted"

    deployment.worker("rescuer", **env)  # its sweep finds the dead worker's task and runs it again
    status = poll("the import done", lambda: deployment.sql(
        "SELECT status, rows_done, created, skipped, failed FROM contacts_contactimport "
        "WHERE id = %s AND status IN ('done', 'failed')", import_id), alive=deployment.check_alive, deadline=180)[0]
    assert status == ("done", ROWS, good, 0, ROWS - good)
    imported = deployment.sql("SELECT count(*), count(DISTINCT phone) FROM contacts_contact")[0]
    assert imported == (before + good, before + good)
    problems = deployment.sql("SELECT count(*), count(DISTINCT row) FROM contacts_contactimportproblem "
                              "WHERE contact_import_id = %s", import_id)[0]
    assert problems == (ROWS - good, ROWS - good)  # the batch cut by the kill was not reported twice

    # The same file again, in this process: everyone is already there.
    again = _import(deployment, tmp_path / "contacts.csv", "--inline")
    assert (again["status"], again["created"], again["skipped"], again["failed"]) == ("done", 0, good, ROWS - good)
    assert deployment.sql("SELECT count(*) FROM contacts_contact")[0][0] == before + good
