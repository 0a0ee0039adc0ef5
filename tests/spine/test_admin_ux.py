"""The admin speaks staff's language: branded, Matrix settings as one form, labels in words,
each channel kind with its own settings, a dashboard that links to the lists behind it."""

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from communications import admin_dashboard
from communications.models import Channel, Message, WebhookDelivery
from integrations.matrix.models import MatrixSettings
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(factories.UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


def test_the_admin_is_branded(staff_client):
    page = staff_client.get("/admin/").content.decode()
    assert '<div id="site-name"><a href="/admin/">Switchboard administration</a></div>' in page
    assert "<title>Triage and settings | Switchboard admin</title>" in page


def test_matrix_settings_open_as_one_form(staff_client):
    url = "/admin/integrations/matrixsettings/"
    response = staff_client.get(url)
    assert response.status_code == 302 and response["Location"] == url + "add/"
    assert staff_client.get(url + "add/").status_code == 200
    response = staff_client.post(
        url + "add/",
        {
            "whatsapp_mode": "matrix",
            "auth_mode": "admin_login",
            "appservice_id": "switchboard",
            "homeserver_url": "http://synapse.example:8008",
            "server_name": "example.com",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert response["Location"] == url + "1/change/"
    assert MatrixSettings.objects.get().server_name == "example.com"
    response = staff_client.get(url)
    assert response.status_code == 302 and response["Location"] == url + "1/change/"
    form = staff_client.get(url + "1/change/").content.decode()
    for label in (
        "WhatsApp mode",
        "Homeserver URL",
        "Registration shared secret",
        "Appservice token",
    ):
        assert f">{label}:</label>" in form


SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


def labels_of(html: str) -> list[str]:
    """Form labels, column headers and filter titles: the words staff read on a page."""
    return (
        re.findall(r"<label[^>]*>([^<]+)", html)
        + re.findall(r'<th scope="col"[^>]*>\s*(?:<div class="text">)?(?:<a[^>]*>)?([^<]+)', html)
        + re.findall(r"<h3>\s*By ([^<]+)", html)
    )


def test_our_admin_pages_label_everything_in_words(staff_client):
    message = factories.MessageFactory()
    MatrixSettings().save()
    objects = {Message: message, MatrixSettings: MatrixSettings.objects.get()}
    checked = 0
    for model in admin.site._registry:
        meta = model._meta
        if meta.app_label not in ("communications", "crm", "integrations"):
            continue
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        urls = [base, base + "add/"]
        if model in objects:
            urls.append(f"{base}{objects[model].pk}/change/")
        for url in urls:
            response = staff_client.get(url, follow=True)
            if response.status_code == 403:
                continue
            labels = labels_of(response.content.decode())
            assert [label for label in labels if SNAKE.search(label)] == [], url
            checked += len(labels)
    assert checked > 100


def test_an_api_channel_shows_only_its_own_settings_as_named_fields(staff_client):
    channel = factories.ChannelFactory(
        kind="api", config={"callback_url": "https://crm.example/cb"}
    )
    url = f"/admin/communications/channel/{channel.pk}/change/"
    page = staff_client.get(url).content.decode()
    for name in ("callback_url", "inbound_token", "callback_secret"):
        assert f'name="{name}"' in page
    for name in ("access_token", "app_secret", "verify_token", "phone_number_id", "config", "kind"):
        assert f'name="{name}"' not in page
    assert 'value="https://crm.example/cb"' in page
    response = staff_client.post(
        url, {"name": "Shop", "is_active": "on", "callback_url": "", "inbound_token": "t1"}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.config, channel.secrets) == ({}, {"inbound_token": "t1"})


def test_a_whatsapp_channel_is_added_kind_first_then_its_settings(staff_client):
    add = "/admin/communications/channel/add/"
    page = staff_client.get(add).content.decode()
    assert 'name="kind"' in page and 'name="phone_number_id"' not in page
    page = staff_client.get(add + "?kind=whatsapp").content.decode()
    for name in ("phone_number_id", "graph_api_base", "access_token", "app_secret", "verify_token"):
        assert f'name="{name}"' in page
    for name in ("inbound_token", "callback_secret", "callback_url", "config"):
        assert f'name="{name}"' not in page
    assert '<option value="whatsapp" selected>' in page
    response = staff_client.post(
        add,
        {
            "kind": "whatsapp",
            "name": "WA Shop",
            "is_active": "on",
            "phone_number_id": " 1055 ",
            "graph_api_base": "",
            "access_token": "EAAB",
            "_save": "Save",
        },
    )
    channel = Channel.objects.get(name="WA Shop")
    assert response["Location"] == reverse("admin:communications_channel_change", args=[channel.pk])
    assert channel.config == {"phone_number_id": "1055"}
    assert channel.secrets == {"access_token": "EAAB"}
    response = staff_client.post(
        add, {"kind": "whatsapp", "name": "Bad", "graph_api_base": "not a url", "_save": "Save"}
    )
    assert response.status_code == 200
    assert "Enter a valid URL." in response.content.decode()
    assert not Channel.objects.filter(name="Bad").exists()


def test_the_dashboard_counts_cheaply_and_links_to_the_lists(staff_client, count_queries):
    support, sales = factories.TeamFactory(name="Support"), factories.TeamFactory(name="Sales")
    factories.ConversationFactory.create_batch(3, team=support)
    factories.ConversationFactory(team=support, status="resolved")
    factories.ConversationFactory(team=support, is_archived=True)
    factories.ConversationFactory(team=None)
    failed = factories.MessageFactory(direction="out", status="failed", failure_reason="HTTP 500")
    factories.MessageFactory.create_batch(3)

    staff_client.get("/admin/")  # Matrix settings are read once, then from the cache
    with count_queries() as queries:
        page = staff_client.get("/admin/").content.decode()
    # Django's own: session, user, the recent-actions box, and Matrix settings' add permission
    # (asked twice: app list and sidebar). The dashboard's: open conversations of every team
    # (one query, bounded counts), the bounded count of failed sends, and both webhook-error
    # counts (one query). Matrix is not configured: its check reads the cached settings only.
    assert queries.count == 8, queries.explain()
    message_queries = [
        q["sql"] for q in queries.context.captured_queries if "communications_message" in q["sql"]
    ]
    assert len(message_queries) == 1 and "\"status\" = 'failed'" in message_queries[0]
    assert "LIMIT 1001" in message_queries[0]
    tiles = re.findall(
        r'<a href="([^"]+)"[^>]*><span class="sb-count">([^<]+)</span> ([^<]+)</a>', page
    )
    changelist = "/admin/communications/conversation/?status__exact=open&amp;is_archived__exact=0"
    assert tiles == [
        (f"{changelist}&amp;team__id__exact={sales.pk}", "0", "Sales"),
        (f"{changelist}&amp;team__id__exact={support.pk}", "3", "Support"),
        (f"{changelist}&amp;team__isnull=True", "5", "No team"),  # + 4 of the messages
        ("/admin/communications/message/?delivery=failed", "1", "Failed sends"),
        (
            "/admin/communications/webhookdelivery/?problem=rejected",
            "0",
            "Rejected webhooks (24 h)",
        ),
        ("/admin/communications/webhookdelivery/?problem=failed", "0", "Failed webhooks (24 h)"),
    ]
    # the links open the lists they count
    listed = staff_client.get(tiles[1][0].replace("&amp;", "&")).context["cl"].result_list
    assert len(listed) == 3
    listed = staff_client.get(tiles[3][0]).context["cl"].result_list
    assert list(listed) == [failed]
    assert "Background worker" in page and "Matrix sync" in page

    # more rows and teams: the same number of queries
    factories.TeamFactory(name="Billing")
    factories.ConversationFactory.create_batch(3, team=sales)
    with count_queries() as more:
        staff_client.get("/admin/")
    assert more.count == 8, more.explain()


def test_the_dashboard_shows_webhook_errors_of_the_last_day(staff_client):
    channel = factories.ChannelFactory()
    now = timezone.now()

    def delivery(n, verdict, outcome, age=timedelta(minutes=5)):
        return WebhookDelivery.objects.create(
            channel=channel,
            source="api",
            body=b"{}",
            verdict=verdict,
            outcome=outcome,
            dedup_key=f"k{n}",
            received_at=now - age,
        )

    bad = delivery(1, "bad_signature", "skipped")
    malformed = delivery(2, "malformed", "skipped")
    failed = delivery(3, "accepted", "failed")
    delivery(4, "accepted", "done")
    delivery(5, "bad_signature", "skipped", age=timedelta(hours=25))  # older than a day
    delivery(6, "accepted", "failed", age=timedelta(days=3))
    page = staff_client.get("/admin/").content.decode()
    assert '<span class="sb-count">2</span> Rejected webhooks (24 h)' in page
    assert '<span class="sb-count">1</span> Failed webhooks (24 h)' in page
    url = "/admin/communications/webhookdelivery/?problem="
    listed = staff_client.get(url + "rejected").context["cl"].result_list
    assert sorted(d.pk for d in listed) == [bad.pk, malformed.pk]
    listed = staff_client.get(url + "failed").context["cl"].result_list
    assert [d.pk for d in listed] == [failed.pk]


def test_dashboard_counts_are_bounded(staff_client, monkeypatch):
    monkeypatch.setattr(admin_dashboard, "COUNT_CAP", 2)
    team = factories.TeamFactory(name="Support")
    factories.ConversationFactory.create_batch(4, team=team)
    for _ in range(4):
        factories.MessageFactory(direction="out", status="failed")
    page = staff_client.get("/admin/").content.decode()
    assert '<span class="sb-count">2+</span> Support' in page
    assert '<span class="sb-count">2+</span> Failed sends' in page


def test_the_dashboard_is_for_staff_who_may_open_its_lists(client):
    client.force_login(factories.UserFactory(username="clerk", is_staff=True))
    page = client.get("/admin/")
    assert page.status_code == 200 and b"sb-dashboard" not in page.content
