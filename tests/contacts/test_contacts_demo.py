"""The demo data shows the contacts page populated: an attribute of each type, values on the
demo contacts, an audited edit by the demo manager; the page renders them."""

import pytest
from django.core.management import call_command

from communications.models import Activity
from crm.models import Contact, CustomAttributeDefinition

pytestmark = pytest.mark.django_db


def test_demo_contacts_have_typed_attributes(client):
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    kinds = set(CustomAttributeDefinition.objects.values_list("type", flat=True))
    assert kinds == {"text", "number", "date", "list"}
    with_values = Contact.objects.exclude(custom_attributes={})
    assert with_values.count() >= 10
    contact = with_values.order_by("pk").first()
    assert contact.custom_attributes["tier"] == "Gold"
    assert isinstance(contact.custom_attributes["loyalty_points"], int)
    edit = Activity.objects.get(
        subject_type="contact", subject_id=contact.pk, actor__username="manager"
    )
    assert edit.after["custom_attributes"] == {"tier": "Gold"}
    client.login(username="manager", password="switchboard")
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Loyalty points" in page and 'value="Gold" selected' in page
