"""Message templates: synced from the WhatsApp Business Account (paginated), offered by the
reply box once the 24-hour window is closed, filled in and sent through the one send path."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from communications.models import Message
from integrations.whatsapp_cloud.models import WhatsAppTemplate
from integrations.whatsapp_cloud.tasks import sync_all_templates
from integrations.whatsapp_cloud.templates import TemplateSyncError, sync_templates

from .conftest import BEARER, BUSINESS_ACCOUNT_ID, PHONE_NUMBER_ID, fixture_bytes, sent_message

pytestmark = pytest.mark.django_db

TEMPLATES = f"/v21.0/{BUSINESS_ACCOUNT_ID}/message_templates"
MESSAGES = f"/v21.0/{PHONE_NUMBER_ID}/messages"


def serve_templates(httpserver):
    page1 = json.loads(fixture_bytes("templates_page1.json"))
    page1["paging"]["next"] = httpserver.url_for(
        TEMPLATES + "?fields=id,name,language&limit=100&after=MQZDZD"
    )
    httpserver.expect_request(
        TEMPLATES, query_string={"after": "MQZDZD", "fields": "id,name,language", "limit": "100"}
    ).respond_with_json(json.loads(fixture_bytes("templates_page2.json")))
    httpserver.expect_request(
        TEMPLATES,
        method="GET",
        headers=BEARER,
        query_string={
            "fields": "id,name,language,category,status,components,parameter_format",
            "limit": "100",
        },
    ).respond_with_json(page1)


@pytest.fixture
def synced(hs_channel, httpserver):
    serve_templates(httpserver)
    sync_templates(hs_channel)
    httpserver.clear_log()
    return {t.name: t for t in WhatsAppTemplate.objects.filter(channel=hs_channel)}


@pytest.fixture
def closed(hs_conversation, manager):
    hs_conversation.channel.teams.add(*manager.teams.all())
    hs_conversation.last_inbound_at = timezone.now() - timedelta(hours=30)
    hs_conversation.save(update_fields=["last_inbound_at"])
    return hs_conversation


def test_sync_follows_every_page_and_stores_each_template(hs_channel, httpserver):
    serve_templates(httpserver)
    assert sync_templates(hs_channel) == 3
    stored = {
        t.name: (t.language, t.category, t.status, t.parameter_format, t.template_id)
        for t in WhatsAppTemplate.objects.all()
    }
    assert stored == {
        "order_shipped": ("en_US", "UTILITY", "APPROVED", "POSITIONAL", "1192339204654487"),
        "invoice_ready": ("en_US", "UTILITY", "APPROVED", "NAMED", "9483725610293847"),
        "spring_sale": ("en_US", "MARKETING", "PENDING", "POSITIONAL", "5566778899001122"),
    }
    assert WhatsAppTemplate.objects.get(name="order_shipped").components[1]["type"] == "BODY"
    assert len(httpserver.log) == 2


def test_a_second_sync_updates_and_forgets_what_meta_no_longer_lists(
    hs_channel, httpserver, synced
):
    page = json.loads(fixture_bytes("templates_page1.json"))
    page["data"] = page["data"][:1]
    page["data"][0]["status"] = "PAUSED"
    del page["paging"]["next"]
    httpserver.clear()
    httpserver.expect_request(TEMPLATES).respond_with_json(page)
    assert sync_templates(hs_channel) == 1
    [template] = WhatsAppTemplate.objects.all()
    assert (template.pk, template.status) == (synced["order_shipped"].pk, "PAUSED")


def test_sync_errors_name_the_problem_and_keep_what_is_stored(hs_channel, httpserver, synced):
    httpserver.clear()
    httpserver.expect_request(TEMPLATES).respond_with_json(
        {
            "error": {
                "message": "Error validating access token: Session has expired",
                "type": "OAuthException",
                "code": 190,
            }
        },
        status=401,
    )
    with pytest.raises(TemplateSyncError, match="HTTP 401: Error validating access token"):
        sync_templates(hs_channel)
    assert WhatsAppTemplate.objects.count() == 3
    with pytest.raises(CommandError, match="1 channel"):
        call_command("whatsapp_sync_templates", "--channel", str(hs_channel.pk))
    assert sync_all_templates() == {
        hs_channel.pk: "error: Meta answered HTTP 401: Error validating access token: Session "
        "has expired"
    }


def test_the_command_and_the_daily_beat_entry(hs_channel, httpserver, capsys):
    serve_templates(httpserver)
    call_command("whatsapp_sync_templates")
    assert f"WhatsApp Cloud (#{hs_channel.pk}): 3 templates" in capsys.readouterr().out
    entry = settings.CELERY_BEAT_SCHEDULE["whatsapp-sync-templates"]
    assert entry == {
        "task": "integrations.whatsapp_cloud.tasks.sync_all_templates",
        "schedule": 86400.0,
    }


def test_a_closed_window_offers_templates_only_with_their_variables(
    api, closed, synced, count_queries
):
    detail = api.get(f"/api/v1/conversations/{closed.pk}/").json()
    assert detail["reply_mode"] == "templates"
    assert "24 hours" in detail["reply_unavailable"]
    with count_queries() as counter:
        response = api.get(f"/api/v1/conversations/{closed.pk}/templates/")
    assert response.status_code == 200
    # token with the user's channels, conversation (with channel and its secrets), templates
    assert counter.count == 3, counter.explain()
    results = response.json()["results"]
    assert [t["name"] for t in results] == ["invoice_ready", "order_shipped"]  # approved only
    order = results[1]
    assert order["header"] == "Order {{1}} has shipped"
    assert order["body"] == "Hi {{1}}, your parcel is on its way and arrives {{2}}."
    assert order["buttons"] == ["Track parcel", "Stop promotions"]
    assert [f["key"] for f in order["fields"]] == ["header.1", "body.1", "body.2", "button.0.1"]
    assert [f["key"] for f in results[0]["fields"]] == ["header.link", "body.first_name"]


def test_an_open_window_offers_free_text(api, hs_conversation, manager):
    hs_conversation.channel.teams.add(*manager.teams.all())
    detail = api.get(f"/api/v1/conversations/{hs_conversation.pk}/").json()
    assert (detail["reply_mode"], detail["reply_unavailable"]) == ("text", "")


def test_a_filled_template_is_sent_and_stored_as_its_text(
    api, closed, synced, httpserver, classical_mode, django_capture_on_commit_callbacks
):
    httpserver.expect_request(MESSAGES, method="POST", headers=BEARER).respond_with_json(
        sent_message("wamid.TEMPLATE1")
    )
    template = synced["order_shipped"]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/conversations/{closed.pk}/messages/",
            {
                "client_id": "tpl-1",
                "template": {
                    "id": template.pk,
                    "variables": {
                        "header.1": "SB-1001",
                        "body.1": "Ann",
                        "body.2": "on Friday",
                        "button.0.1": "SB-1001",
                    },
                },
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    assert response.json()["content"] == (
        "Order SB-1001 has shipped\n\n"
        "Hi Ann, your parcel is on its way and arrives on Friday.\n\n"
        "Lucky Shrub"
    )
    message = Message.objects.get(client_id="tpl-1")
    assert (message.status, message.external_id) == (Message.Status.SENT, "wamid.TEMPLATE1")
    [(request, _)] = httpserver.log
    assert json.loads(request.data) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "en_US"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "SB-1001"}]},
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ann"},
                        {"type": "text", "text": "on Friday"},
                    ],
                },
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": "SB-1001"}],
                },
            ],
        },
    }


def test_a_named_template_with_a_document_header(
    api, closed, synced, httpserver, classical_mode, django_capture_on_commit_callbacks
):
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(sent_message("wamid.T2"))
    link = "https://shop.example.com/invoices/SB-1001.pdf"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/conversations/{closed.pk}/messages/",
            {
                "client_id": "tpl-2",
                "template": {
                    "id": synced["invoice_ready"].pk,
                    "variables": {"header.link": link, "body.first_name": "Ann"},
                },
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    assert response.json()["content"] == "Hello Ann, your invoice is attached."
    [(request, _)] = httpserver.log
    assert json.loads(request.data)["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "document", "document": {"link": link}}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ann", "parameter_name": "first_name"}],
        },
    ]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ({"variables": {"body.1": "Ann"}}, "variable header.1 of template 'order_shipped'"),
        (
            {
                "variables": {
                    "header.1": "x",
                    "body.1": "y",
                    "body.2": "z",
                    "button.0.1": "w",
                    "body.9": "?",
                }
            },
            "has no variable body.9",
        ),
        ({"id": 999999}, "template 999999 is not a template of this channel"),
        ({"name": "spring_sale"}, "spring_sale' is pending: only approved ones send"),
        (
            {
                "name": "invoice_ready",
                "variables": {"header.link": "file:///etc/passwd", "body.first_name": "A"},
            },
            "header.link must be an http(s) link",
        ),
    ],
)
def test_a_bad_template_request_is_a_400_naming_the_problem(
    api, closed, synced, httpserver, template, problem
):
    template = dict(template)
    name = template.pop("name", "order_shipped")
    template.setdefault("id", synced[name].pk)
    template.setdefault("variables", {})
    response = api.post(
        f"/api/v1/conversations/{closed.pk}/messages/",
        {"client_id": "bad", "template": template},
        format="json",
    )
    assert response.status_code == 400
    assert problem in response.json()["detail"]
    assert not Message.objects.exists() and not httpserver.log


def test_templates_are_not_offered_on_other_channels(api, channel, manager):
    from tests import factories

    conversation = factories.ConversationFactory(channel=channel)
    assert api.get(f"/api/v1/conversations/{conversation.pk}/templates/").json() == {"results": []}
    response = api.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        {"client_id": "t", "template": {"id": 1, "variables": {}}},
        format="json",
    )
    assert response.status_code == 400
    assert "have no message templates" in response.json()["detail"]


def test_the_demo_has_a_closed_window_conversation_with_templates(classical_mode):
    from communications.models import Channel, Conversation
    from communications.providers import message_templates, reply_options

    call_command("seed_demo")
    channel = Channel.objects.get(kind=Channel.Kind.WHATSAPP)
    modes = {
        c.contact.name: reply_options(channel, c).mode
        for c in Conversation.objects.filter(channel=channel).select_related("contact")
    }
    assert set(modes.values()) == {"templates", "text"}
    quiet = next(
        c
        for c in Conversation.objects.filter(channel=channel)
        if modes[c.contact.name] == "templates"
    )
    assert [t["name"] for t in message_templates(quiet)] == ["follow_up", "order_shipped"]


def test_staff_see_the_synced_templates_in_the_admin(hs_channel, synced, admin_client):
    response = admin_client.get("/admin/integrations/whatsapptemplate/?status__exact=APPROVED")
    assert response.status_code == 200
    assert b"order_shipped" in response.content and b"spring_sale" not in response.content
