"""docker-compose.yml, the production override, Dockerfile and .env.example hang together.

There is no Docker engine here, so this parses the files and checks what `docker compose`
would trip over, plus our own rules (one image, nginx wired to the right names and paths).
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web1", "web2", "worker", "beat")
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())  # SafeLoader resolves `<<` merge keys


@pytest.fixture(scope="module")
def base() -> dict:
    return load("docker-compose.yml")


@pytest.fixture(scope="module")
def prod() -> dict:
    return load("docker-compose.prod.yml")


def interpolate(value):
    """${VAR:-default} → default, as compose does when VAR is unset."""
    if isinstance(value, str):
        return INTERPOLATION.sub(lambda m: m.group(2) or "", value)
    return value


def command(service: dict) -> str:
    value = service.get("command", "")
    return " ".join(value) if isinstance(value, list) else value


def test_every_documented_service_exists(base):
    services = base["services"]
    section = (ROOT / "docs" / "OPS.md").read_text().split("## Services", 1)[1].split("##")[0]
    documented = [
        name
        for line in section.splitlines()
        if line.startswith("- ")
        for name in re.findall(r"`([a-z0-9-]+)`", line.split(" — ")[0])
    ]
    assert set(documented) >= {"postgres", "redis", "web1", "web2", "worker", "beat", "nginx"}
    assert set(documented) <= set(services)
    assert {"postgres", "redis", "migrate", "web1", "web2", "worker", "beat", "nginx"} <= set(
        services
    )


def test_app_services_share_one_image_and_configuration(base):
    services = base["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == "."
        assert service["env_file"] == ".env"
        env = service["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgres://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["MEDIA_ROOT"] == "/data/media"
        assert "media:/data/media" in service["volumes"]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in ("web1", "web2", "worker", "beat"):
        assert (
            services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )


def test_commands(base):
    services = base["services"]
    for name in ("web1", "web2"):
        assert command(services[name]).startswith("uvicorn --host 0.0.0.0 --port 8000")
        assert command(services[name]).endswith("crm.asgi:application")
        # The client address is taken from nginx's X-Forwarded-For by the app, only from a
        # trusted proxy (crm/proxy.py); the server's own proxy-header handling would believe
        # any peer (uvicorn's is on by default: switched off).
        assert "--no-proxy-headers" in command(services[name])
    ws = command(services["ws"])
    assert ws.startswith("uvicorn --host 0.0.0.0 --port 8000")
    assert ws.endswith("crm.asgi:application")
    assert "--no-proxy-headers" in ws
    # The implementation the outbox and the A/B were measured with; no deflate per frame.
    assert "--ws websockets-sansio --ws-per-message-deflate false" in ws
    assert command(services["worker"]).startswith("celery -A crm worker")
    beat = command(services["beat"])
    assert beat.startswith("celery -A crm beat")
    assert "crm.beat:HeartbeatScheduler" in beat
    assert "migrate --noinput" in command(services["migrate"])
    assert "collectstatic" in command(services["migrate"])
    assert services["migrate"]["restart"] == "no"


def test_healthchecks(base):
    services = base["services"]
    for name in ("postgres", "redis", "web1", "web2", "worker", "beat", "nginx"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["interval"] and check["timeout"], name
    web_check = services["web1"]["healthcheck"]["test"][-1]
    compile(web_check, "healthcheck", "exec")  # the inline Python must at least parse
    assert "/health/" in web_check


def test_nginx_mounts_its_config_and_reaches_the_web_services(base):
    nginx = base["services"]["nginx"]
    assert "./nginx/switchboard.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert "static:/srv/static:ro" in nginx["volumes"]
    assert "media:/srv/media:ro" in nginx["volumes"]
    assert "static:/app/staticfiles" in base["services"]["migrate"]["volumes"]
    conf = (ROOT / "nginx" / "switchboard.conf").read_text()
    upstream = re.findall(r"server\s+([a-z0-9-]+):(\d+)", conf)
    # pages and API over both web services; webhooks to web1, web2 its backup; websockets
    assert upstream == [("web1", "8000"), ("web2", "8000")] * 2 + [("ws", "8000")]
    for name, port in upstream:
        assert port in base["services"][name]["expose"]
    assert "alias /srv/static/;" in conf and "alias /srv/media/;" in conf
    assert "proxy_read_timeout 3600s;" in conf and "proxy_send_timeout 3600s;" in conf
    assert set(base["volumes"]) >= {"postgres-data", "redis-data", "media", "static"}


def test_production_override_scales_out(base, prod):
    assert set(prod["services"]) <= set(base["services"])
    web_processes = sum(
        int(interpolate(prod["services"][name]["deploy"]["replicas"])) for name in ("web1", "web2")
    )
    assert web_processes >= 4
    assert int(interpolate(prod["services"]["worker"]["deploy"]["replicas"])) >= 2
    assert "--concurrency=" in command(prod["services"]["worker"])
    assert prod["services"]["beat"]["deploy"]["replicas"] == 1
    for name, service in prod["services"].items():
        limits = service["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"], name
    for name in ("web1", "web2"):  # scalable: nothing pins a single container
        assert "container_name" not in base["services"][name]
        assert "ports" not in base["services"][name]


def test_every_variable_is_in_env_example():
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    settings_source = (ROOT / "crm" / "settings.py").read_text()
    read_by_settings = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", settings_source))
    assert read_by_settings, "the settings read no variables?"
    assert read_by_settings - listed == set()
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        used = {m.group(1) for m in INTERPOLATION.finditer((ROOT / name).read_text())}
        assert used - listed == set(), name


def test_dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
    assert "pip install -r requirements.txt" in text
    assert "collectstatic --noinput" in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "crm.asgi:application" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)


def test_matrix_override_fits_when_present(base):
    path = ROOT / "deploy" / "matrix" / "docker-compose.matrix.yml"
    if not path.exists():
        pytest.skip("deploy/matrix/docker-compose.matrix.yml not written yet")
    matrix = yaml.safe_load(path.read_text())
    names = set(base["services"]) | set(matrix["services"])
    for name, service in matrix["services"].items():
        depends = service.get("depends_on", [])
        for dependency in depends if isinstance(depends, list) else depends.keys():
            assert dependency in names, f"{name} depends on unknown {dependency}"


def test_matrix_sync_runs_with_the_same_image_and_settings_as_web(base):
    sync = load("deploy/matrix/docker-compose.matrix.yml")["services"]["matrix-sync"]
    web = base["services"]["web1"]
    assert sync["image"] == web["image"]
    for key in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT"):
        assert sync["environment"][key] == web["environment"][key], key
    assert "media:/data/media" in sync["volumes"]
    assert sync["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
