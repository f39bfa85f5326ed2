"""Settings of the test suite (pyproject's DJANGO_SETTINGS_MODULE): the real settings, run with
what a test run needs in its environment.

Set before conversa.settings is read, and inherited by the servers and workers the tests start
as subprocesses: a secret key (the PostgreSQL + Redis phase is a production-shaped environment,
which refuses to start without one) and the sandbox simulator the tests drive customers with.
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-never-used-outside-the-test-suite-0123456789")
os.environ.setdefault("CONVERSA_SANDBOX_SIMULATOR", "1")
# Tests drain tasks in-process, not in worker processes: no heartbeat for /healthz/ to require.
os.environ.setdefault("CONVERSA_HEALTH_REQUIRE_WORKER", "0")

from conversa.settings import *  # noqa: F403
