"""Message templates: synced from the WhatsApp Business Account, filled in, sent.

Outside the 24-hour customer-service window WhatsApp accepts only approved templates. Meta
lists them at `GET {base}/{WABA_ID}/message_templates` (paginated: `paging.next` is the next
page's full URL); each has components — HEADER (format TEXT with at most one variable, or
IMAGE / VIDEO / DOCUMENT / LOCATION), BODY, FOOTER, BUTTONS (QUICK_REPLY, URL whose address
may end in one variable, PHONE_NUMBER…). Variables are `{{1}}` (POSITIONAL) or `{{name}}`
(NAMED). A send names the template and language and gives each variable's value in the
component it belongs to:

    {"type": "header", "parameters": [{"type": "text", "text": "…"}]}      (or image/video/
                                                   document: {"type": "image", "image": {"link": …}})
    {"type": "body", "parameters": [{"type": "text", "text": "…"}, …]}
    {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", …}]}

NAMED templates add `"parameter_name"` to each text parameter.
"""

import re

import requests
from django.conf import settings
from django.utils import timezone

from communications.models import Channel, Conversation

from ..base import PermanentDeliveryError, PreparedTemplate, TemplateRejected
from .models import WhatsAppTemplate

VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_HEADERS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document"}
MAX_PAGES = 200  # 100 templates a page: far beyond the 250 (or 6,000) a WABA may hold
MAX_VALUE = 1024
FIELDS = "id,name,language,category,status,components,parameter_format"


class TemplateSyncError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- Sync --------------------------------------------------------------------------------
def sync_templates(channel: Channel) -> int:
    """Replace the channel's stored templates with what Meta lists now. Returns how many."""
    from .provider import auth_headers, graph_base

    waba_id = str(channel.config.get("business_account_id", "")).strip()
    if not waba_id:
        raise TemplateSyncError(
            "this WhatsApp channel has no WhatsApp Business Account ID (admin → Channels)"
        )
    try:
        headers = auth_headers(channel)
    except PermanentDeliveryError as exc:
        raise TemplateSyncError(exc.reason) from exc
    timeout = settings.SWITCHBOARD["PROVIDER_HTTP_TIMEOUT"]
    url: str | None = f"{graph_base(channel)}/{waba_id}/message_templates"
    params: dict | None = {"fields": FIELDS, "limit": 100}
    listed: list[dict] = []
    for _ in range(MAX_PAGES):
        if not url:
            break
        try:
            response = requests.get(url, params=params, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            raise TemplateSyncError(f"Graph API unreachable: {exc.__class__.__name__}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 300 or not isinstance(answer, dict):
            error = (answer or {}).get("error") if isinstance(answer, dict) else None
            text = error.get("message") if isinstance(error, dict) else ""
            raise TemplateSyncError(
                f"Meta answered HTTP {response.status_code}" + (f": {text}" if text else "")
            )
        listed.extend(t for t in answer.get("data") or [] if isinstance(t, dict))
        url = ((answer.get("paging") or {}).get("next")) or None
        params = None  # the next URL carries every parameter (and the cursor)
    now = timezone.now()
    rows = {}
    for item in listed:
        name, language = str(item.get("name") or ""), str(item.get("language") or "")
        if not name or not language:
            continue
        components = item.get("components")
        rows[(name, language)] = WhatsAppTemplate(
            channel=channel,
            template_id=str(item.get("id") or "")[:64],
            name=name[:512],
            language=language[:16],
            category=str(item.get("category") or "")[:32],
            status=str(item.get("status") or "")[:32],
            components=components if isinstance(components, list) else [],
            parameter_format=str(item.get("parameter_format") or "POSITIONAL")[:16],
            synced_at=now,
        )
    WhatsAppTemplate.objects.bulk_create(
        list(rows.values()),
        update_conflicts=True,
        unique_fields=["channel", "name", "language"],
        update_fields=[
            "template_id",
            "category",
            "status",
            "components",
            "parameter_format",
            "synced_at",
        ],
    )
    WhatsAppTemplate.objects.filter(channel=channel, synced_at__lt=now).delete()
    return len(rows)


def channels_to_sync():
    return (
        Channel.objects.filter(kind=Channel.Kind.WHATSAPP, is_active=True)
        .exclude(config__business_account_id="")
        .filter(config__has_key="business_account_id")
    )


# --- Variables ---------------------------------------------------------------------------
def _component(template: WhatsAppTemplate, kind: str) -> dict | None:
    for component in template.components:
        if isinstance(component, dict) and str(component.get("type", "")).upper() == kind:
            return component
    return None


def _names(text: str) -> list[str]:
    return list(dict.fromkeys(VARIABLE.findall(text or "")))


def _url_buttons(template: WhatsAppTemplate) -> list[tuple[int, dict]]:
    buttons = (_component(template, "BUTTONS") or {}).get("buttons") or []
    return [
        (index, button)
        for index, button in enumerate(buttons)
        if isinstance(button, dict) and str(button.get("type", "")).upper() == "URL"
    ]


def template_fields(template: WhatsAppTemplate) -> list[dict]:
    """What a manager fills in, in the order shown: `key` names the value in a send."""
    fields = []
    header = _component(template, "HEADER")
    if header:
        header_format = str(header.get("format", "TEXT")).upper()
        if header_format in MEDIA_HEADERS:
            fields.append(
                {
                    "key": "header.link",
                    "label": f"Header {MEDIA_HEADERS[header_format]} (public https link)",
                }
            )
        for name in _names(header.get("text", "")) if header_format == "TEXT" else []:
            fields.append({"key": f"header.{name}", "label": f"Header {{{{{name}}}}}"})
    for name in _names((_component(template, "BODY") or {}).get("text", "")):
        fields.append({"key": f"body.{name}", "label": f"Body {{{{{name}}}}}"})
    for index, button in _url_buttons(template):
        for name in _names(button.get("url", "")):
            fields.append(
                {"key": f"button.{index}.{name}", "label": f"Link of “{button.get('text', '')}”"}
            )
    return fields


def template_payload(template: WhatsAppTemplate) -> dict:
    """A template as the reply box shows it (TemplateSerializer documents the shape)."""
    header = _component(template, "HEADER") or {}
    buttons = (_component(template, "BUTTONS") or {}).get("buttons") or []
    return {
        "id": template.pk,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "header": header.get("text", "")
        if str(header.get("format", "TEXT")).upper() == "TEXT"
        else f"[{str(header.get('format', '')).lower()}]"
        if header
        else "",
        "body": (_component(template, "BODY") or {}).get("text", ""),
        "footer": (_component(template, "FOOTER") or {}).get("text", ""),
        "buttons": [b.get("text", "") for b in buttons if isinstance(b, dict)],
        "fields": template_fields(template),
    }


def approved_templates(channel: Channel) -> list[dict]:
    return [
        template_payload(t)
        for t in WhatsAppTemplate.objects.filter(channel=channel, status="APPROVED")
    ]


# --- A send ------------------------------------------------------------------------------
def prepare_template(conversation: Conversation, request: dict) -> PreparedTemplate:
    """Check `{"id": <template id>, "variables": {key: value}}` and fill the template in."""
    template_id = request.get("id")
    variables = request.get("variables") or {}
    if not isinstance(template_id, int) or not isinstance(variables, dict):
        raise TemplateRejected("template needs an integer 'id' and a 'variables' object")
    template = WhatsAppTemplate.objects.filter(
        pk=template_id, channel_id=conversation.channel_id
    ).first()
    if template is None:
        raise TemplateRejected(f"template {template_id} is not a template of this channel")
    if template.status != "APPROVED":
        raise TemplateRejected(
            f"template '{template.name}' is {template.status.lower()}: only approved ones send"
        )
    keys = [f["key"] for f in template_fields(template)]
    unknown = sorted(set(variables) - set(keys))
    if unknown:
        raise TemplateRejected(f"template '{template.name}' has no variable {unknown[0]}")
    values = {}
    for key in keys:
        value = variables.get(key)
        if not isinstance(value, str) or not value.strip():
            raise TemplateRejected(f"variable {key} of template '{template.name}' is empty")
        if len(value) > MAX_VALUE:
            raise TemplateRejected(f"variable {key} is longer than {MAX_VALUE} characters")
        values[key] = value.strip()
    if "header.link" in values and not values["header.link"].startswith(("https://", "http://")):
        raise TemplateRejected("variable header.link must be an http(s) link")
    named = template.parameter_format.upper() == "NAMED"

    def text_parameter(name: str, value: str) -> dict:
        parameter = {"type": "text", "text": value}
        if named:
            parameter["parameter_name"] = name
        return parameter

    def fill(text: str, prefix: str) -> str:
        return VARIABLE.sub(lambda m: values.get(f"{prefix}.{m.group(1)}", m.group(0)), text)

    components: list[dict] = []
    shown: list[str] = []
    header = _component(template, "HEADER")
    if header:
        header_format = str(header.get("format", "TEXT")).upper()
        if header_format in MEDIA_HEADERS:
            media = MEDIA_HEADERS[header_format]
            components.append(
                {
                    "type": "header",
                    "parameters": [{"type": media, media: {"link": values["header.link"]}}],
                }
            )
        elif header_format == "TEXT":
            names = _names(header.get("text", ""))
            if names:
                components.append(
                    {
                        "type": "header",
                        "parameters": [text_parameter(n, values[f"header.{n}"]) for n in names],
                    }
                )
            shown.append(fill(header.get("text", ""), "header"))
    body = (_component(template, "BODY") or {}).get("text", "")
    names = _names(body)
    if names:
        components.append(
            {
                "type": "body",
                "parameters": [text_parameter(n, values[f"body.{n}"]) for n in names],
            }
        )
    shown.append(fill(body, "body"))
    footer = (_component(template, "FOOTER") or {}).get("text", "")
    if footer:
        shown.append(footer)
    for index, button in _url_buttons(template):
        names = _names(button.get("url", ""))
        if names:
            components.append(
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": str(index),
                    "parameters": [
                        {"type": "text", "text": values[f"button.{index}.{n}"]} for n in names
                    ],
                }
            )
    return PreparedTemplate(
        content="\n\n".join(part for part in shown if part),
        metadata={
            "whatsapp_template": {
                "id": template.pk,
                "name": template.name,
                "language": template.language,
                "components": components,
            }
        },
    )
