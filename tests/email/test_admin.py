"""Admin: passwords write-only; "test connection" says in words what worked and what failed."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from integrations.email.models import EmailAccount
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    user = factories.UserFactory(username="root")
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_test_connection_reports_each_server(account, staff_client, smtp):
    url = "/admin/integrations/emailaccount/"
    response = staff_client.post(
        url, {"action": "check_connection", "_selected_action": [account.pk]}, follow=True
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)] or [
        m.message for m in response.context["messages"]
    ]
    assert any("IMAP: OK — logged in" in t for t in texts), texts
    assert any("SMTP: OK" in t for t in texts), texts

    EmailAccount.objects.filter(pk=account.pk).update(
        secrets={"imap_password": "nope", "smtp_password": "nope"}
    )
    smtp.stop()
    response = staff_client.post(
        url, {"action": "check_connection", "_selected_action": [account.pk]}, follow=True
    )
    texts = [m.message for m in response.context["messages"]]
    assert any("refused the user name or password for 'demouser'" in t for t in texts), texts
    assert any("connection was refused (wrong port, or the server is down)" in t for t in texts)


def test_passwords_are_write_only(account, staff_client):
    page = staff_client.get(f"/admin/integrations/emailaccount/{account.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "demopass" not in html and "smtp-pass" not in html
    assert "set — leave blank to keep" in html
