"""Plain Django requests through the ASGI application (crm/asgi_handler.py): the middleware
chain and the view run in one thread hop, not two per middleware, and still behave as Django's
handler (middleware, auth, errors, the request_finished signal)."""

import httpx
import pytest
from asgiref import sync
from django.core.signals import request_finished
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def asgi():
    from crm.asgi import application

    transport = httpx.ASGITransport(app=application, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client


@pytest.fixture
def hops(monkeypatch):
    counted = []
    original = sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        counted.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    return counted


async def test_an_api_request_hops_to_a_thread_for_the_chain_once(asgi, manager, hops):
    token = await sync.sync_to_async(Token.objects.create)(user=manager)
    hops.clear()
    finished = []
    request_finished.connect(
        lambda **kwargs: finished.append(1), weak=False, dispatch_uid="one-hop-test"
    )
    try:
        response = await asgi.get(
            "/api/v1/conversations/", headers={"Authorization": f"Token {token.key}"}
        )
    finally:
        request_finished.disconnect(dispatch_uid="one-hop-test")
    assert response.status_code == 200 and "results" in response.json()
    assert response.headers["X-Frame-Options"] == "DENY"  # the middleware ran
    # request_started's receivers, the whole chain with the view, the response's close.
    assert len(hops) == 3, hops
    assert finished  # request_finished fired: connections and caches are handed back


async def test_refusals_still_come_from_the_middleware_and_views(asgi, hops):
    assert (await asgi.get("/api/v1/conversations/")).status_code == 401
    assert (await asgi.get("/no-such-page/")).status_code == 404
    login = await asgi.get("/accounts/login/")
    assert login.status_code == 200 and "csrftoken" in login.cookies
