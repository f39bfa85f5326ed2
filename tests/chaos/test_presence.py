"""An agent whose web process dies is not left present (decisions #60): her console socket is open on
a real uvicorn process, which is killed with SIGKILL (as kill -9 or the OOM killer would), so it
neither closes the socket nor deletes its row. Its heartbeat stops, the worker's sweep deletes the
row once it is stale, and after the grace period she is offline: automatic distribution stops
handing her conversations. Before that, her live socket outlives the stale interval."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess

import httpx
import pytest
from tests.chaos.conftest import Deployment, poll
from tests.servers import local_url
from websockets.sync.client import connect

pytestmark = pytest.mark.postgres_only
HEARTBEAT, STALE, GRACE = 0.5, 3.0, 1.0
PRESENCE = {"CONVERSA_PRESENCE_HEARTBEAT_EVERY": str(HEARTBEAT), "CONVERSA_PRESENCE_STALE_AFTER": str(STALE),
            "CONVERSA_PRESENCE_GRACE": str(GRACE)}
# From the kill: the last refresh is at most HEARTBEAT old, the row stale STALE after it, the sweep
# runs every 0.5 s (conftest), the grace runs from the last refresh; the rest is a loaded machine.
OFFLINE_WITHIN = HEARTBEAT + STALE + GRACE + 10.0


def _web(deployment: Deployment, name: str) -> tuple[str, subprocess.Popen[bytes]]:
    url = local_url(deployment.start_uvicorn(name, env=deployment.env(**PRESENCE)))
    proc = deployment.procs[-1][1]
    deployment.wait_http(name, f"{url}/api/schema/", deadline=30.0, timeout=5.0)
    return url, proc


def test_a_killed_web_process_leaves_no_present_agent_behind(deployment: Deployment):
    doomed, doomed_proc = _web(deployment, "doomed")
    survivor, _ = _web(deployment, "survivor")  # where the webhooks keep arriving
    deployment.worker("worker", **PRESENCE)  # processes webhooks, distributes, sweeps
    deployment.sql("UPDATE campaigns_campaign SET routing = 'round_robin' WHERE name = 'Sales'")
    agent = deployment.sql("SELECT id FROM auth_user WHERE username = 'agent1'")[0][0]
    # The demo leaves every agent offline until she opens the console: agent1 will be the only one.
    assert deployment.sql("SELECT DISTINCT status FROM accounts_agentprofile") == [("offline",)]

    def status() -> str:
        return str(deployment.sql("SELECT status FROM accounts_agentprofile WHERE user_id = %s", agent)[0][0])

    def sockets() -> list[tuple[int, datetime.datetime, datetime.datetime]]:
        return deployment.sql("SELECT id, opened_at, seen_at FROM accounts_agentsocket WHERE user_id = %s", agent)

    def conversation_of(n: int) -> tuple[str, int | None] | None:
        rows = deployment.sql("SELECT c.status, c.agent_id FROM inbox_conversation c JOIN inbox_message m "
                              "ON m.conversation_id = c.id WHERE m.body = %s", f"mensaje {n}")
        return rows[0] if rows else None

    response = httpx.post(f"{survivor}/api/v1/auth/token/", data={"username": "agent1", "password": "demo"},
                          timeout=10)
    assert response.status_code == 200, response.text
    ws_url = doomed.replace("http://", "ws://") + f"/ws/agent/?token={response.json()['token']}"
    with connect(ws_url, open_timeout=10) as console:
        assert '"hello"' in str(console.recv(timeout=10))
        poll("her socket recorded and her status ready", lambda: sockets() and status() == "ready",
             alive=deployment.check_alive)
        deployment.post_webhook(survivor, 1)
        poll("the conversation handed to her", lambda: conversation_of(1) == ("attended", agent),
             alive=deployment.check_alive)

        # Alive: refreshed by its process past the stale interval, so never swept.
        [(handle, opened_at, _)] = sockets()
        poll("her live socket refreshed past the stale interval", lambda: [
            row for row in sockets() if row[0] == handle
            and row[2] > opened_at + datetime.timedelta(seconds=STALE * 1.5)], alive=deployment.check_alive)
        assert status() == "ready"

        os.kill(doomed_proc.pid, signal.SIGKILL)
        doomed_proc.wait(10)
        # Nothing closed it (SIGKILL): only the sweep can remove it, once it is stale.
        poll("her socket row gone and her status offline", lambda: not sockets() and status() == "offline",
             deadline=OFFLINE_WITHIN, alive=deployment.check_alive)

    deployment.post_webhook(survivor, 2)
    poll("the later webhook processed", lambda: conversation_of(2) and deployment.unprocessed() == 0,
         alive=deployment.check_alive)
    # Distribution runs in the worker right after a batch commits, before it takes the next batch:
    # once a following webhook is processed, the second conversation's hand-out has run.
    deployment.post_webhook(survivor, 3)
    poll("a following webhook processed", lambda: conversation_of(3) and deployment.unprocessed() == 0,
         alive=deployment.check_alive)
    assert conversation_of(2) == ("new", None)  # waiting in the general inbox: nobody is there


def test_the_heartbeat_outlives_a_postgresql_restart(deployment: Deployment):
    web, _ = _web(deployment, "web")
    deployment.worker("worker", **PRESENCE)
    agent = deployment.sql("SELECT id FROM auth_user WHERE username = 'agent1'")[0][0]
    response = httpx.post(f"{web}/api/v1/auth/token/", data={"username": "agent1", "password": "demo"}, timeout=10)
    assert response.status_code == 200, response.text

    def refreshed_since(moment: datetime.datetime) -> bool:
        return bool(deployment.sql("SELECT 1 FROM accounts_agentsocket WHERE user_id = %s AND seen_at > %s",
                                   agent, moment))

    with connect(web.replace("http://", "ws://") + f"/ws/agent/?token={response.json()['token']}",
                 open_timeout=10) as console:
        assert '"hello"' in str(console.recv(timeout=10))
        poll("her socket recorded", lambda: refreshed_since(datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)),
             alive=deployment.check_alive)
        deployment.cluster.stop()
        try:
            poll("the heartbeat failing, logged", lambda: "refreshing the presence" in (
                deployment.logs / "web.log").read_text(errors="replace"), alive=deployment.check_alive)
        finally:
            deployment.cluster.start()
        restarted = deployment.sql("SELECT now()")[0][0]
        # Refreshed again by the same task (or, had the sweep removed it meanwhile, recorded again).
        poll("her socket refreshed after the restart", lambda: refreshed_since(restarted),
             alive=deployment.check_alive)
        poll("her status ready", lambda: deployment.sql(
            "SELECT status FROM accounts_agentprofile WHERE user_id = %s", agent) == [("ready",)])
