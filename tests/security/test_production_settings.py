"""Issue 15 item 6: production defaults. Each case is a fresh process with a production environment
(DATABASE_URL/REDIS_URL set), as documented in docs/operations.md, not the test suite's settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What docs/operations.md lists for a production deployment behind a TLS proxy. Nothing here is
# contacted: `check` and settings import do not connect to PostgreSQL or Redis.
DOCUMENTED_PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://conversa:secret@127.0.0.1:5432/conversa",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "conversa.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://conversa.example.com",
    "PUBLIC_BASE_URL": "https://conversa.example.com",
    "BEHIND_TLS_PROXY": "1",
}
INHERITED_SETTINGS = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CONVERSA_SANDBOX_SIMULATOR", "BEHIND_TLS_PROXY",
                      "DJANGO_SETTINGS_MODULE", "SQLITE_PATH", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DEBUG",
                      "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"}


def run(args: list[str], *, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in INHERITED_SETTINGS}
    base.update({"DJANGO_SETTINGS_MODULE": "conversa.settings", "CONVERSA_VAR_DIR": str(tmp_path)})
    base.update(env)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=base, capture_output=True, text=True, timeout=120)


def setting(name: str, *, env: dict[str, str], tmp_path: Path) -> str:
    done = run(["-c", f"import sys; sys.path.insert(0, 'src'); from django.conf import settings; "
                      f"print(repr(settings.{name}))"], env=env, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def production_env(**extra: str) -> dict[str, str]:
    return {**DOCUMENTED_PRODUCTION_ENV, "SECRET_KEY": secrets.token_urlsafe(50), **extra}


def test_a_production_process_without_secret_key_refuses_to_start(tmp_path: Path) -> None:
    for env in ({"DATABASE_URL": DOCUMENTED_PRODUCTION_ENV["DATABASE_URL"]},
                {"REDIS_URL": DOCUMENTED_PRODUCTION_ENV["REDIS_URL"]}):
        done = run(["manage.py", "check"], env=env, tmp_path=tmp_path)
        assert done.returncode != 0
        assert "ImproperlyConfigured" in done.stderr and "SECRET_KEY is not set" in done.stderr
        # The ASGI entry point (what uvicorn imports) refuses too.
        done = run(["-c", "import sys; sys.path.insert(0, 'src'); import conversa.asgi"], env=env, tmp_path=tmp_path)
        assert done.returncode != 0 and "SECRET_KEY is not set" in done.stderr


def test_the_embedded_demo_still_starts_without_secret_key(tmp_path: Path) -> None:
    done = run(["manage.py", "check"], env={}, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr


def test_check_deploy_passes_with_the_documented_production_environment(tmp_path: Path) -> None:
    done = run(["manage.py", "check", "--deploy"], env=production_env(), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # Not even a warning from Django's deployment checklist (the security-tagged checks).
    done = run(["manage.py", "check", "--deploy", "--tag", "security", "--fail-level", "WARNING"],
               env=production_env(), tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_behind_the_tls_proxy_http_is_redirected_except_the_health_check(tmp_path: Path) -> None:
    code = ("import sys; sys.path.insert(0, 'src'); import django; django.setup()\n"
            "from django.http import HttpResponse\n"
            "from django.middleware.security import SecurityMiddleware\n"
            "from django.test import RequestFactory\n"
            "mw = SecurityMiddleware(lambda r: HttpResponse())\n"
            "rf = RequestFactory(HTTP_HOST='conversa.example.com')\n"
            "login = mw.process_request(rf.get('/login/'))\n"
            "print(login.status_code, login['Location'])\n"
            "print(mw.process_request(rf.get('/healthz/')))\n"
            "secure = rf.get('/login/', HTTP_X_FORWARDED_PROTO='https')\n"
            "hsts = mw.process_response(secure, HttpResponse())['Strict-Transport-Security']\n"
            "print(mw.process_request(secure), hsts)\n"
            "from django.conf import settings\n"
            "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)\n")
    done = run(["-c", code], env=production_env(), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    redirect, health, hsts, cookies = done.stdout.strip().splitlines()[-4:]
    assert redirect == "301 https://conversa.example.com/login/"
    assert health == "None"
    assert hsts.startswith("None max-age=31536000") and "includeSubDomains" in hsts
    assert cookies == "True True"


def test_the_sandbox_simulator_is_off_in_production_unless_asked_for(tmp_path: Path) -> None:
    assert setting("CONVERSA_SANDBOX_SIMULATOR", env=production_env(), tmp_path=tmp_path) == "False"
    assert setting("CONVERSA_SANDBOX_SIMULATOR", env=production_env(CONVERSA_SANDBOX_SIMULATOR="1"),
                   tmp_path=tmp_path) == "True"
    assert setting("CONVERSA_SANDBOX_SIMULATOR", env={}, tmp_path=tmp_path) == "True"  # the embedded demo
