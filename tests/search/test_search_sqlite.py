"""The embedded (SQLite) search path: FTS5 with the porter stemmer, kept by triggers.

The suite runs on PostgreSQL; this runs the same search tests (tests/search/
test_search_api.py) in a child pytest on a fresh SQLite test database built by the
migrations, so the FTS5 table, its triggers and the SQLite branch of every query are what is
tested. Then the triggers' survival of a table rebuild (Django's SQLite ALTER TABLE)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _sqlite_env() -> dict:
    env = {**os.environ, "DATABASE_URL": "", "REDIS_URL": "", "CELERY_BROKER_URL": ""}
    env.pop("PYTEST_ADDOPTS", None)
    return env


def test_search_suite_passes_on_sqlite_fts5():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/search/test_search_api.py",
            "tests/search/sqlite_checks.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore",
        ],
        cwd=ROOT,
        env=_sqlite_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
