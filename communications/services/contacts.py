"""Editing a contact from the contacts page and the API: details, the contact note, typed
custom attributes, labels.

Each value of a custom attribute is checked against its `CustomAttributeDefinition` (text,
number, date, list) and refused with a message naming the attribute. A change is made under
the contact's row lock, writes one audit row (subject: the contact, the changed fields' before
and after) and is a `contact.updated` event on every channel the contact has conversations on,
all in one transaction, so an open thread's customer card shows it at once.
"""

import math
import re
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower

from crm.models import Contact, ContactLabel, CustomAttributeDefinition, Label

from .. import events
from ..models import Activity, Conversation
from ..serializers import ATTRIBUTE_DEFINITION_COLUMNS, contact_card_fields, contact_payload
from .activity import record_audit

MAX_TEXT = 500
DETAIL_FIELDS = {"name": 255, "phone": 32, "email": 254, "notes": 5000}
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ContactChangeRejected(Exception):
    """`errors`: {field: message}, a custom attribute as {"custom_attributes": {key: message}}."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(_flatten(errors)))
        self.errors = errors


def _flatten(errors: dict) -> list[str]:
    out = []
    for field, value in errors.items():
        if isinstance(value, dict):
            out += [f"{field}.{key}: {message}" for key, message in value.items()]
        else:
            out.append(f"{field}: {value}")
    return out


def attribute_definitions() -> list[dict]:
    return list(CustomAttributeDefinition.objects.values(*ATTRIBUTE_DEFINITION_COLUMNS))


def clean_attribute_value(definition: dict, raw):
    """The value to store for `raw` (None: remove it), or ValueError with the reason."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = definition["type"]
    if isinstance(raw, bool) or isinstance(raw, (list, dict)):
        raise ValueError(_expected(kind, definition))
    if kind == CustomAttributeDefinition.Type.TEXT:
        if not isinstance(raw, str):
            raise ValueError("must be text")
        value = raw.strip()
        if len(value) > MAX_TEXT:
            raise ValueError(f"is {len(value)} characters long: at most {MAX_TEXT}")
        return value
    if kind == CustomAttributeDefinition.Type.NUMBER:
        if isinstance(raw, (int, float)):
            if isinstance(raw, float) and not math.isfinite(raw):
                raise ValueError("must be a finite number")
            return raw
        text = str(raw).strip().replace("\u00a0", "").replace(" ", "")
        if not NUMBER.match(text):
            raise ValueError(f"must be a number (like 42 or 3.5), not '{str(raw)[:40]}'")
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern already refused it
            raise ValueError(f"must be a number, not '{str(raw)[:40]}'") from None
        if abs(number) >= Decimal("1e15"):
            raise ValueError("is too large: at most 15 digits")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == CustomAttributeDefinition.Type.DATE:
        if not isinstance(raw, str):
            raise ValueError(_expected(kind, definition))
        text = raw.strip()
        try:
            if not DATE.match(text):
                raise ValueError
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(f"must be a date as YYYY-MM-DD, not '{raw[:40]}'") from None
    if kind == CustomAttributeDefinition.Type.LIST:
        if not isinstance(raw, str):
            raise ValueError(_expected(kind, definition))
        options = definition["options"] or []
        for option in options:
            if option.casefold() == raw.strip().casefold():
                return option
        raise ValueError(f"must be one of {', '.join(options)}; '{raw[:40]}' is not")
    raise ValueError(f"has an unknown type {kind!r}")  # pragma: no cover


def _expected(kind: str, definition: dict) -> str:
    if kind == CustomAttributeDefinition.Type.LIST:
        return f"must be one of {', '.join(definition['options'] or [])}"
    return {
        "text": "must be text",
        "number": "must be a number (like 42 or 3.5)",
        "date": "must be a date as YYYY-MM-DD",
    }[kind]


def clean_changes(changes: dict, definitions: list[dict]) -> tuple[dict, dict | None]:
    """Validate (details, custom attribute values): every problem at once, each named."""
    errors: dict = {}
    details = {}
    for field, value in changes.items():
        if field == "custom_attributes":
            continue
        if field not in DETAIL_FIELDS:
            errors[field] = "is not a field of a contact that can be changed"
            continue
        if not isinstance(value, str):
            errors[field] = "must be text"
            continue
        value = value.strip() if field != "notes" else value
        if len(value) > DETAIL_FIELDS[field]:
            errors[field] = f"is {len(value)} characters long: at most {DETAIL_FIELDS[field]}"
            continue
        if field == "email" and value:
            try:
                validate_email(value)
            except DjangoValidationError:
                errors[field] = f"'{value[:60]}' is not an email address"
                continue
        details[field] = value
    attributes = None
    raw = changes.get("custom_attributes")
    if raw is not None:
        if not isinstance(raw, dict):
            errors["custom_attributes"] = 'must be an object: {"key": value}'
        else:
            by_key = {d["key"]: d for d in definitions}
            attribute_errors = {}
            attributes = {}
            for key, value in raw.items():
                definition = by_key.get(key)
                if definition is None:
                    known = ", ".join(sorted(by_key)) or "none are defined"
                    attribute_errors[key] = f"is not a custom attribute (known: {known})"
                    continue
                try:
                    attributes[key] = clean_attribute_value(definition, value)
                except ValueError as exc:
                    attribute_errors[key] = f"{definition['name']} {exc}"
            if attribute_errors:
                errors["custom_attributes"] = attribute_errors
    if errors:
        raise ContactChangeRejected(errors)
    return details, attributes


def update_contact(contact_id: int, changes: dict, *, actor=None) -> Contact:
    """Apply `changes` (name, phone, email, notes; `custom_attributes`: {key: value or None
    to remove}, the others kept) to the contact. The caller has checked the user may see it.
    Raises ContactChangeRejected (nothing written) with every problem named."""
    definitions = attribute_definitions()
    details, attributes = clean_changes(changes, definitions)
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact_id)
        contact._attribute_definitions = definitions
        before, after = {}, {}
        for field, value in details.items():
            if getattr(contact, field) != value:
                before[field], after[field] = getattr(contact, field), value
                setattr(contact, field, value)
        if attributes is not None:
            current = dict(contact.custom_attributes or {})
            changed_before, changed_after = {}, {}
            for key, value in attributes.items():
                if current.get(key) != value:
                    changed_before[key], changed_after[key] = current.get(key), value
                    if value is None:
                        current.pop(key, None)
                    else:
                        current[key] = value
            if changed_after:
                before["custom_attributes"] = changed_before
                after["custom_attributes"] = changed_after
                contact.custom_attributes = current
        if not after:
            return contact
        contact.save(update_fields=[*(f for f in after), "updated_at"])
        record_audit(
            Activity.Verb.CHANGED,
            subject_type=Activity.Subject.CONTACT,
            subject_id=contact.pk,
            subject_repr=str(contact),
            before=before,
            after=after,
            actor=actor,
        )
        announce_contact_change(contact)
    return contact


def change_contact_labels(
    contact: Contact, *, add: list[Label] = (), remove: list[Label] = (), actor=None
) -> bool:
    """A contact's labels; repeats and races change nothing (the unique link decides). A change
    is an audit row and a `contact.updated` event; returns whether anything changed."""
    with transaction.atomic():
        Contact.objects.select_for_update().filter(pk=contact.pk).values_list("pk").first()
        before = list(contact.labels.order_by(Lower("name"), "id"))
        present = {label.pk for label in before}
        removing = {label.pk for label in remove} & present
        adding = {label.pk: label for label in add if label.pk not in present}
        adding = {pk: label for pk, label in adding.items() if pk not in removing}
        if not adding and not removing:
            contact._loaded_labels = before
            return False
        if removing:
            ContactLabel.objects.filter(contact_id=contact.pk, label_id__in=removing).delete()
        if adding:
            ContactLabel.objects.bulk_create(
                [ContactLabel(contact_id=contact.pk, label=label) for label in adding.values()],
                ignore_conflicts=True,
            )
        after = sorted(
            [label for label in before if label.pk not in removing] + list(adding.values()),
            key=lambda label: (label.name.lower(), label.pk),
        )
        contact._loaded_labels = after
        record_audit(
            Activity.Verb.LABELS,
            subject_type=Activity.Subject.CONTACT,
            subject_id=contact.pk,
            subject_repr=str(contact),
            before={"labels": _label_refs(before)},
            after={"labels": _label_refs(after)},
            actor=actor,
        )
        announce_contact_change(contact)
    return True


def _label_refs(labels) -> list[dict]:
    """As the conversations' label lines keep them (serializers.activity_text reads them)."""
    return [{"id": label.pk, "name": label.name, "color": label.color} for label in labels]


def announce_contact_change(contact: Contact) -> None:
    """`contact.updated` with the card's fields (labels, custom attributes; orders are not
    changed here) to every channel the contact has conversations on (after commit)."""
    payload = contact_payload(contact) | contact_card_fields(contact)
    channel_ids = sorted(
        set(
            Conversation.objects.filter(contact_id=contact.pk)
            .order_by()
            .values_list("channel_id", flat=True)
            .distinct()
        )
    )
    events.record_events(
        [(events.CONTACT_UPDATED, channel_id, None, payload) for channel_id in channel_ids]
    )


def rejection_detail(exc: ContactChangeRejected) -> dict:
    """DRF's 400 shape: {field: [message]}, a custom attribute {"custom_attributes": {key:
    [message]}}."""
    return {
        field: (
            {key: [message] for key, message in value.items()}
            if isinstance(value, dict)
            else [value]
        )
        for field, value in exc.errors.items()
    }


# --- demo data ------------------------------------------------------------------------------

DEMO_DEFINITIONS = [
    ("company", "Company", "text", []),
    ("loyalty_points", "Loyalty points", "number", []),
    ("customer_since", "Customer since", "date", []),
    ("tier", "Tier", "list", ["Bronze", "Silver", "Gold"]),
    ("preferred_language", "Preferred language", "list", ["English", "German", "Italian"]),
]
DEMO_COMPANIES = ["Northwind Traders", "Acme Interiors", "", "Studio Rossi", "", "Fjord Design"]


def seed_demo_contact_attributes(*, manager=None) -> None:
    """seed_demo: one attribute definition of each type (and a second list), values on the
    demo contacts (checked like any edit), and one edit by the demo manager through the
    service, so the audit log and the contact page show it."""
    definitions = []
    for position, (key, name, kind, options) in enumerate(DEMO_DEFINITIONS):
        definition, _ = CustomAttributeDefinition.objects.get_or_create(
            key=key, defaults={"name": name, "type": kind, "options": options, "position": position}
        )
        definitions.append(definition)
    rows = {
        d.key: {"key": d.key, "name": d.name, "type": d.type, "options": d.options}
        for d in definitions
    }
    contacts = list(
        Contact.objects.filter(conversations__isnull=False).distinct().order_by("pk")[:12]
    )
    tiers = rows["tier"]["options"]
    languages = rows["preferred_language"]["options"]
    for i, contact in enumerate(contacts):
        raw = {
            "company": DEMO_COMPANIES[i % len(DEMO_COMPANIES)],
            "loyalty_points": str(120 + 37 * i),
            "customer_since": f"{2019 + i % 6}-{1 + i % 12:02d}-15",
            "tier": tiers[i % len(tiers)],
            "preferred_language": languages[i % len(languages)] if i % 3 else "",
        }
        values = {key: clean_attribute_value(rows[key], value) for key, value in raw.items()}
        contact.custom_attributes = {k: v for k, v in values.items() if v is not None}
    Contact.objects.bulk_update(contacts, ["custom_attributes"])
    if contacts and manager is not None:
        update_contact(
            contacts[0].pk,
            {
                "custom_attributes": {"tier": "Gold"},
                "notes": "Orders for three shops; invoice monthly.",
            },
            actor=manager,
        )
