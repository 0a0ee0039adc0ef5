"""Sign-in under attack, through compose's real web server (uvicorn) on PostgreSQL with the psycopg
pool and real PBKDF2 hashing: nothing unauthenticated exhausts the pool, and the brake is exact
under concurrency (an atomic counter, taken before any password is hashed)."""

import asyncio
import re
import uuid
from collections import Counter

import httpx
import pytest
from rest_framework.authtoken.models import Token

from tests import factories

from . import live

pytestmark = pytest.mark.redis

CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def server(transactional_db, tmp_path):
    live.require_postgres_and_redis()

    def start(**env):
        return live.web_servers(1, live.server_env(**env), tmp_path / "logs")

    return start


def csrf(base: str, path: str) -> tuple[str, dict]:
    page = httpx.get(base + path, timeout=30)
    assert page.status_code == 200, page.text[:300]
    return CSRF_FIELD.search(page.content).group(1).decode(), dict(page.cookies)


async def post_many(base, path, forms, cookies, headers_for=lambda i: {}, during=None):
    limits = httpx.Limits(max_connections=len(forms) + 5, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        client.cookies.update(cookies)

        async def one(i, form):
            response = await client.post(path, data=form, headers=headers_for(i))
            return response.status_code, response.text

        tasks = [asyncio.create_task(one(i, form)) for i, form in enumerate(forms)]
        side = None
        if during is not None:
            await asyncio.sleep(0.5)  # the crowd is in flight
            side = await during(client)
        return await asyncio.gather(*tasks), side


def test_100_concurrent_bad_sign_ins_cause_no_500_and_a_manager_is_still_served(
    server, manager, channel
):
    """A small pool (4 connections, 3 s wait) and 100 sign-ins for an unknown user from 100
    addresses (as reported by a trusted proxy, so the per-address brake does not stop them):
    password hashing must not hold a connection, so none ends in PoolTimeout, and a manager's
    API call made meanwhile gets its answer."""
    token = Token.objects.create(user=manager).key
    with server(DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="4", DB_POOL_TIMEOUT="3") as ports:
        base = f"http://127.0.0.1:{ports[0]}"
        field, cookies = csrf(base, "/accounts/login/")
        forms = [
            {
                "username": "nobody-" + uuid.uuid4().hex,
                "password": "guess",
                "csrfmiddlewaretoken": field,
            }
            for _ in range(100)
        ]

        async def manager_call(client):
            response = await client.get(
                "/api/v1/conversations/", headers={"Authorization": f"Token {token}"}
            )
            return response.status_code, response.text

        results, (manager_status, manager_body) = asyncio.run(
            post_many(
                base,
                "/accounts/login/",
                forms,
                cookies,
                headers_for=lambda i: {"X-Forwarded-For": f"203.0.113.{i + 1}"},
                during=manager_call,
            )
        )
    statuses = Counter(status for status, _ in results)
    assert manager_status == 200, manager_body[:500]
    assert set(statuses) <= {200, 429}, (statuses, [b[:300] for s, b in results if s >= 500][:2])
    assert statuses[200] >= 1  # some were checked (and refused as wrong), not all turned away
    busy = [body for status, body in results if status == 429]
    assert all("Sign-in is busy" in body for body in busy)


def test_25_concurrent_wrong_passwords_get_exactly_10_checked(server):
    username = "maria-" + uuid.uuid4().hex
    factories.UserFactory(username=username)
    with server(LOGIN_RATE_LIMIT="10/300s", LOGIN_HASH_WAIT_SECONDS="60") as ports:
        base = f"http://127.0.0.1:{ports[0]}"
        field, cookies = csrf(base, "/accounts/login/")
        forms = [
            {"username": username, "password": f"wrong{i}", "csrfmiddlewaretoken": field}
            for i in range(25)
        ]
        results, _ = asyncio.run(post_many(base, "/accounts/login/", forms, cookies))
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 10, 429: 15}, statuses
    checked = [body for status, body in results if status == 200]
    assert all("didn&#x27;t match" in body or "didn't match" in body for body in checked)
    refused = [body for status, body in results if status == 429]
    assert all("Too many failed sign-ins" in body for body in refused)


def test_admin_sign_in_has_the_same_brake_and_a_success_clears_it(server, server_password_hashers):
    username = "staff-" + uuid.uuid4().hex
    factories.UserFactory(username=username, is_staff=True)
    with server(LOGIN_RATE_LIMIT="3/300s") as ports:
        base = f"http://127.0.0.1:{ports[0]}"
        with httpx.Client(base_url=base, timeout=60) as client:
            page = client.get("/admin/login/")
            field = CSRF_FIELD.search(page.content).group(1).decode()

            def attempt(password):
                return client.post(
                    "/admin/login/",
                    data={"username": username, "password": password, "csrfmiddlewaretoken": field},
                )

            assert attempt("wrong").status_code == 200
            assert attempt("switchboard").status_code == 302  # success clears the count
            client.cookies.clear()
            page = client.get("/admin/login/")
            field = CSRF_FIELD.search(page.content).group(1).decode()
            assert [attempt("wrong").status_code for _ in range(3)] == [200, 200, 200]
            refused = attempt("switchboard")  # even the right password: the brake is on
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert refused.headers["Retry-After"] == "300"
