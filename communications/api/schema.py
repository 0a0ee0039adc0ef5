"""What the OpenAPI schema says about answers that are not the happy path.

Every operation lists the statuses it can answer with their real shapes: a page is
`{results, next_cursor}`, an error `{"detail": "..."}` (401, 404, 409) or DRF's validation
errors keyed by field (400). tests/reliability/test_api_contract.py fuzzes the API against the
schema with schemathesis, so a status or shape left out here fails the suite.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="Invalid input: the keys name the fields (or `detail`), values say why",
        examples=[OpenApiExample("bad page size", {"page_size": ["must be 1 to 100"]})],
    ),
    401: OpenApiResponse(ErrorSerializer, description="Missing or wrong credentials"),
    404: OpenApiResponse(
        ErrorSerializer, description="Not found, or not visible to this user (ids do not leak)"
    ),
    409: OpenApiResponse(ErrorSerializer, description="Conflicts with the current state"),
}


def errors(*codes: int) -> dict:
    """The error answers of an operation, by status code; 401 always (every view is private)."""
    return {code: ERRORS[code] for code in sorted({401, *codes})}


def page_of(
    name: str, item: serializers.Serializer, *, extra_fields=None, **kwargs
) -> serializers.Serializer:
    return inline_serializer(
        **kwargs,
        name=name,
        fields={
            **(extra_fields or {}),
            "results": item,
            "next_cursor": serializers.CharField(
                allow_null=True, help_text="pass as the cursor of the next request; null at the end"
            ),
        },
    )


def empty_query_values_mean_absent(result, generator, request, public):
    """drf-spectacular postprocessing hook: every query parameter of this API treats an empty
    value (`?status=`) as not given, so the schema says so (`allowEmptyValue`)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter["allowEmptyValue"] = True
    return result


def search_result_serializer() -> serializers.Serializer:
    from ..serializers import ContactSerializer, ConversationSerializer

    message_hit = inline_serializer(
        many=True,
        name="SearchMessageHit",
        fields={
            "id": serializers.IntegerField(),
            "conversation_id": serializers.IntegerField(),
            "direction": serializers.ChoiceField(choices=["in", "out"]),
            "kind": serializers.CharField(),
            "created_at": serializers.DateTimeField(),
            "contact_name": serializers.CharField(),
            "subject": serializers.CharField(help_text="the conversation's (email) subject"),
            "channel": inline_serializer(
                name="SearchMessageChannel",
                fields={
                    "id": serializers.IntegerField(),
                    "name": serializers.CharField(),
                    "kind": serializers.CharField(),
                },
            ),
            "highlight_html": serializers.CharField(
                help_text="the hit in context, HTML-escaped, the matched words in <mark>"
            ),
        },
    )
    return inline_serializer(
        name="SearchResult",
        fields={
            "conversations": page_of(
                "SearchConversationPage", ConversationSerializer(many=True), required=False
            ),
            "messages": page_of("SearchMessagePage", message_hit, required=False),
            "contacts": page_of(
                "SearchContactPage",
                inline_serializer(
                    name="SearchContactHit",
                    many=True,
                    fields={
                        **ContactSerializer().get_fields(),
                        "latest_conversation_id": serializers.IntegerField(
                            help_text="their most recent conversation the caller may see"
                        ),
                    },
                ),
                required=False,
            ),
        },
    )
