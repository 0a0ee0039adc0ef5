"""docs/MATRIX_SETUP.md works word for word (issue 10, item 5).

Steps 1 and 2 are run exactly as written (bash, openssl, envsubst from gettext-base) in a copy of
the repository's templates and `.env.example`; the rendered registrations are loaded with PyYAML
and with Synapse's own appservice loader (`synapse.config.appservice.load_appservices`, in the
Synapse virtualenv the Matrix tests use). Every compose service the docs and the rendered files
name exists in the compose files.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "MATRIX_SETUP.md"
COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "deploy/matrix/docker-compose.matrix.yml"]


def section(name: str) -> str:
    text = DOCS.read_text()
    start = text.index(f"## {name}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def code_blocks(markdown: str) -> list[str]:
    """The indented (4-space) code blocks, in order."""
    blocks, current = [], []
    for line in markdown.splitlines():
        if line.startswith("    ") or (current and not line.strip()):
            current.append(line[4:])
        elif current:
            blocks.append("\n".join(current).strip() + "\n")
            current = []
    if current:
        blocks.append("\n".join(current).strip() + "\n")
    return blocks


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    if not (shutil.which("envsubst") and shutil.which("openssl")):
        pytest.skip("envsubst (gettext-base) and openssl are needed to follow the docs")
    work = tmp_path_factory.mktemp("matrix-setup")
    shutil.copytree(ROOT / "deploy" / "matrix", work / "deploy" / "matrix")
    shutil.copy(ROOT / ".env.example", work / ".env")  # what the README says to start from
    script = "".join(code_blocks(section("1. Secrets")) + code_blocks(section("2. Render")))
    assert "envsubst" in script and "openssl rand" in script, script
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return work


def test_rendered_files_are_valid_yaml(rendered):
    out = rendered / "deploy" / "matrix" / "rendered"
    names = {p.name for p in out.iterdir()}
    assert names == {
        "homeserver.yaml",
        "switchboard-registration.yaml",
        "whatsapp-registration.yaml",
        "whatsapp-config.yaml",
    }
    for path in out.iterdir():
        data = yaml.safe_load(path.read_text())
        assert isinstance(data, dict), path
        assert "${" not in path.read_text(), f"{path.name} still has a placeholder"
    registration = yaml.safe_load((out / "switchboard-registration.yaml").read_text())
    regexes = [n["regex"] for n in registration["namespaces"]["users"]]
    assert regexes == [
        r"^@switchboard_.*:matrix\.example\.com$",
        r"^@whatsapp.*:matrix\.example\.com$",
    ]
    env = (rendered / ".env").read_text()
    assert re.search(r"^DJANGO_ALLOWED_HOSTS=.*,nginx$", env, re.M), "nginx is an allowed host"


def test_synapse_loads_the_rendered_registrations(rendered):
    from tests.matrix_harness.synapse import ensure_synapse_installed

    python = ensure_synapse_installed()
    out = rendered / "deploy" / "matrix" / "rendered"
    files = [str(out / "whatsapp-registration.yaml"), str(out / "switchboard-registration.yaml")]
    probe = """
import json, sys
from synapse.config.appservice import load_appservices
services = load_appservices("matrix.example.com", sys.argv[1:])
users = ["@whatsapp_15551234567:matrix.example.com", "@whatsappbot:matrix.example.com",
         "@switchboard_7:matrix.example.com", "@whatsapp_1:matrixXexampleYcom"]
print(json.dumps({s.id: {"url": s.url, "exclusive": [u for u in users if s.is_exclusive_user(u)],
                         "interested": [u for u in users if s.is_interested_in_user(u)]}
                  for s in services}))
"""
    result = subprocess.run(
        [str(python), "-c", probe, *files], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    services = json.loads(result.stdout.strip().splitlines()[-1])
    assert services["whatsapp"]["exclusive"] == [
        "@whatsapp_15551234567:matrix.example.com",
        "@whatsappbot:matrix.example.com",
    ]
    assert services["switchboard"]["exclusive"] == ["@switchboard_7:matrix.example.com"]
    # The dots are escaped: a look-alike server name is nobody's.
    assert "@whatsapp_1:matrixXexampleYcom" not in services["switchboard"]["interested"]
    assert services["switchboard"]["url"] == "http://nginx/matrix/appservice"
    assert services["whatsapp"]["url"] == "http://mautrix-whatsapp:29318"


def compose_services() -> set[str]:
    names: set[str] = set()
    for path in COMPOSE_FILES:
        names |= set(yaml.safe_load(path.read_text())["services"])
    return names


def test_every_compose_service_the_docs_name_exists():
    services = compose_services()
    text = DOCS.read_text()
    named = set(
        re.findall(r"docker compose (?:-f \S+ )*(?:exec|run --rm)(?: -e \S+)* ([\w-]+)", text)
    )
    named |= set(re.findall(r"^`([\w-]+)`, `([\w-]+)` and `([\w-]+)`", text, re.M)[0])
    assert named >= {"web1", "synapse", "mautrix-whatsapp", "matrix-sync"}, named
    assert named <= services, f"not in the compose files: {named - services}"


def test_every_host_the_templates_name_is_a_compose_service():
    services = compose_services()
    hosts = set()
    for template in (ROOT / "deploy" / "matrix").glob("*.template"):
        hosts |= set(
            re.findall(
                r"(?:https?|postgres)://(?:[^@/\s\"']*@)?([a-z][\w-]*)[:/\"]", template.read_text()
            )
        )
    hosts -= {"localhost"}
    assert {"nginx", "mautrix-whatsapp", "postgres"} <= hosts, hosts
    assert hosts <= services, f"not in the compose files: {hosts - services}"
