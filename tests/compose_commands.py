"""docker-compose.yml's commands, run here: the tests start the servers exactly as compose
does, bound to loopback on a free port, with this virtualenv's interpreter."""

import re
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def compose_command(service: str, port: int) -> list[str]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    text = INTERPOLATION.sub(lambda m: m.group(2) or "", services[service]["command"])
    words = shlex.split(text)
    for flags, value in ((("--host", "-b"), "127.0.0.1"), (("--port", "-p"), str(port))):
        flag = next(flag for flag in flags if flag in words)  # uvicorn's spelling, or daphne's
        words[words.index(flag) + 1] = value
    return [sys.executable, "-m", *words]
