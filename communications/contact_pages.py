"""The contacts pages: /contacts/ (search by name, phone in any formatting, email) and
/contacts/<id>/ (every conversation across channels, orders, labels, private notes, the
contact note and the typed custom attributes, editable).

Server-rendered forms (they work without a script): the same reads as the API
(search.contact_list, selectors.contact_with_details, serializers.contact_detail_payload) and
the same writes (services/contacts.py), so a change here is the same audit row and
`contact.updated` event as a PATCH.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods
from rest_framework.exceptions import ValidationError

from crm.models import Label

from .access import access_contact_by_id
from .search import contact_list, contact_list_payload
from .selectors import contact_with_details
from .serializers import contact_detail_payload
from .services.contacts import ContactChangeRejected, change_contact_labels, update_contact
from .services.labels import LabelRejected, label_create

DETAIL_FIELDS = ("name", "phone", "email", "notes")


@require_GET
@login_required
def contacts(request):
    q = " ".join((request.GET.get("q") or "").split())
    params = {key: request.GET[key] for key in ("q", "cursor") if request.GET.get(key)}
    error = ""
    try:
        page = contact_list_payload(contact_list(request.user, params))
    except ValidationError as exc:
        error = "; ".join(
            f"{field}: {' '.join(str(m) for m in problems)}"
            for field, problems in exc.detail.items()
        )
        page = {"results": [], "next_cursor": None}
    next_url = ""
    if page["next_cursor"]:
        query = request.GET.copy()
        query["cursor"] = page["next_cursor"]
        next_url = f"?{query.urlencode()}"
    return render(
        request,
        "communications/contacts.html",
        {"q": q, "contacts": page["results"], "next_url": next_url, "error": error},
        status=400 if error else 200,
    )


@require_http_methods(["GET", "POST"])
@login_required
def contact_detail(request, contact_id: int):
    errors: dict = {}
    posted: dict = {}
    if request.method == "POST":
        contact = access_contact_by_id(request.user, contact_id)  # 404 for a foreign one
        action = request.POST.get("action", "")
        try:
            done = _apply(request, contact, action)
        except ContactChangeRejected as exc:
            errors, posted = exc.errors, request.POST
        except LabelRejected as exc:
            errors, posted = {"label": str(exc)}, request.POST
        else:
            messages.success(request, done)
            return HttpResponseRedirect(reverse("contact", args=[contact.pk]))
    payload = contact_detail_payload(contact_with_details(request.user, contact_id))
    return render(
        request,
        "communications/contact.html",
        _context(payload, errors, posted),
        status=400 if errors else 200,
    )


def _apply(request, contact, action: str) -> str:
    if action == "details":
        changes = {field: request.POST.get(field, "") for field in DETAIL_FIELDS}
        update_contact(contact.pk, changes, actor=request.user)
        return "Contact details saved."
    if action == "attributes":
        values = {
            key.removeprefix("attr-"): value
            for key, value in request.POST.items()
            if key.startswith("attr-")
        }
        update_contact(contact.pk, {"custom_attributes": values}, actor=request.user)
        return "Custom attributes saved."
    if action == "label-add":
        label, _ = label_create(name=request.POST.get("label_name", ""))
        change_contact_labels(contact, add=[label], actor=request.user)
        return f"Label “{label.name}” added."
    if action == "label-remove":
        labels = [
            label for label in contact.labels.all() if str(label.pk) == request.POST.get("label")
        ]
        if not labels:
            raise LabelRejected("that label is not on this contact", field="label")
        change_contact_labels(contact, remove=labels, actor=request.user)
        return f"Label “{labels[0].name}” removed."
    raise ContactChangeRejected({"action": f"unknown action '{action[:40]}'"})


def _context(payload: dict, errors: dict, posted) -> dict:
    attribute_errors = errors.get("custom_attributes")
    attribute_errors = attribute_errors if isinstance(attribute_errors, dict) else {}
    attributes = []
    for attribute in payload["custom_attributes"]:
        key = attribute["key"]
        value = attribute["value"]
        if posted and f"attr-{key}" in posted:
            value = posted[f"attr-{key}"]
        attributes.append(
            attribute
            | {
                "input_value": "" if value is None else value,
                "error": attribute_errors.get(key, ""),
            }
        )
    details = {field: payload[field] for field in DETAIL_FIELDS}
    if posted and posted.get("action") == "details":
        details = {field: posted.get(field, "") for field in DETAIL_FIELDS}
    return {
        "all_labels": list(Label.objects.values_list("name", flat=True)),
        "contact": payload,
        "details": details,
        "attributes": attributes,
        "errors": {k: v for k, v in errors.items() if k != "custom_attributes"},
        "attribute_errors": attribute_errors,
        "error_count": len(attribute_errors) + len([k for k in errors if k != "custom_attributes"]),
        "conversations": [
            c | {"last_message_at_dt": parse_datetime(c["last_message_at"] or "")}
            for c in payload["conversations"]
        ],
        "notes": [n | {"created_at_dt": parse_datetime(n["created_at"])} for n in payload["notes"]],
        "orders": [
            o | {"ordered_at_dt": parse_datetime(o["ordered_at"])} for o in payload["orders"]
        ],
    }
