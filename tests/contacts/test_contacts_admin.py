"""Staff manage the attribute definitions in the admin; the contact admin validates values
as the page and the API do."""

import json

import pytest

from crm.models import CustomAttributeDefinition
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(client):
    user = factories.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_a_list_definition_needs_options_and_others_have_none(client, boss):
    url = "/admin/crm/customattributedefinition/add/"
    base = {"key": "tier", "name": "Tier", "type": "list", "position": 0, "description": ""}
    response = client.post(url, {**base, "options": "[]"})
    assert response.status_code == 200 and "needs its options" in response.content.decode()
    response = client.post(url, {**base, "type": "number", "options": '["a"]'})
    assert "only a list attribute has options" in response.content.decode()
    assert client.post(url, {**base, "options": '["Bronze", " Gold "]'}).status_code == 302
    assert CustomAttributeDefinition.objects.get().options == ["Bronze", "Gold"]


def test_the_contact_admin_refuses_a_value_of_the_wrong_type(client, boss):
    CustomAttributeDefinition.objects.create(key="points", name="Loyalty points", type="number")
    contact = factories.ContactFactory(name="Ann Lee")
    url = f"/admin/crm/contact/{contact.pk}/change/"
    form = {
        "name": "Ann Lee",
        "phone": contact.phone,
        "email": "",
        "avatar_url": "",
        "username": "",
        "notes": "",
        "label_links-TOTAL_FORMS": 0,
        "label_links-INITIAL_FORMS": 0,
        "orders-TOTAL_FORMS": 0,
        "orders-INITIAL_FORMS": 0,
    }
    response = client.post(url, {**form, "custom_attributes": json.dumps({"points": "abc"})})
    assert response.status_code == 200
    assert "Loyalty points must be a number" in response.content.decode()
    response = client.post(url, {**form, "custom_attributes": json.dumps({"points": "12"})})
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.custom_attributes == {"points": 12}
