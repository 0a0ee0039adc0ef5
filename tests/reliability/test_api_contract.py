"""The API keeps the contract it publishes: schemathesis fuzzes every operation of
/api/schema/ over real HTTP (a live server), authenticated as a manager with a token, with
valid and invalid input, and every answer must be a documented status with the documented
shape — never a 5xx.

The operations are driven through schemathesis' Python API (one hypothesis run per operation
and mode, a bounded number of examples each): its pytest plugin (`from_fixture`) does not run
under pytest 9.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from tests import factories

EXAMPLES = 25
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.fixture
def manager_token(transactional_db):
    """A manager with a token, a team and a channel with conversations, messages and a failed
    send, so that small ids reach real rows and not only 404s."""
    channel = factories.ChannelFactory()
    team = factories.TeamFactory()
    channel.teams.add(team)
    manager = factories.UserFactory(username="contract-manager")
    team.members.add(manager)
    for _ in range(3):
        conversation = factories.ConversationFactory(channel=channel)
        factories.MessageFactory(conversation=conversation)
        factories.MessageFactory(
            conversation=conversation, direction="out", status="failed", client_id=None
        )
    factories.ConversationFactory()  # on a channel the manager cannot see
    return Token.objects.create(user=manager).key


def test_api_keeps_its_published_contract(live_server, manager_token):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    headers = {"Authorization": f"Token {manager_token}"}
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode == GenerationMode.NEGATIVE and not _takes_input(operation):
                continue  # nothing to make invalid (GET /api/v1/notifications/settings/)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported together
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    assert operations >= 9
    assert not failures, "\n\n".join(failures)


def _takes_input(operation) -> bool:
    """Whether an operation has input of its own to make invalid (the credentials' header and
    cookie, listed from the security schemes, do not count: they are always sent valid)."""
    parameters = (operation.path_parameters, operation.query, operation.headers, operation.cookies)
    own = [
        p for group in parameters for p in group if "x-original-security-type" not in p.definition
    ]
    return bool(own) or len(list(operation.body)) > 0


@pytest.mark.parametrize(
    "query, name",
    [
        ("unread=null", "unread"),
        ("archived=maybe", "archived"),
        ("page_size=0", "page_size"),
        ("q=%00", "q"),
        ("status=gone", "status"),
    ],
)
def test_a_bad_list_parameter_is_a_400_naming_it(api, query, name):
    response = api.get(f"/api/v1/conversations/?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [name]


@pytest.mark.django_db
def test_empty_parameters_mean_not_given_as_the_schema_says(api, client):
    assert api.get("/api/v1/conversations/?status=&unread=&channel=&page_size=").status_code == 200
    schema = client.get("/api/schema/?format=json").json()
    parameters = schema["paths"]["/api/v1/conversations/"]["get"]["parameters"]
    assert all(p["allowEmptyValue"] for p in parameters if p["in"] == "query")
    listed = schema["paths"]["/api/v1/conversations/"]["get"]["responses"]
    assert set(listed) == {"200", "400", "401"}
