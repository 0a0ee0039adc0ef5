"""A redis-server only one test uses, on a free port: killed and started again at will.

For failure tests (Redis restarted, Redis gone); never the shared Redis of REDIS_URL.
"""

import shutil
import socket
import subprocess
import time

import pytest
import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server only this test uses: stopped and started again on the same port."""

    def __init__(self, directory):
        self.port = _free_port()
        self.directory = directory
        self.process = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("our redis-server did not start")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushall()


def running_redis(directory):
    """For a fixture: yields a started OwnRedis, kills it after."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = OwnRedis(directory)
    server.start()
    yield server
    server.kill()
