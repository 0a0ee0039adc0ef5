"""The JSON API under /api/v1/: thin views over selectors and services."""

from django.db import transaction
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.safe_json import SafeJSONParser

from ..access import (
    access_contact_by_id,
    access_conversation_by_id,
    access_conversation_id,
    access_conversations_by_ids,
    access_message_by_id,
)
from ..providers import message_templates
from ..search import GROUPS, contact_list, contact_list_payload, result_payload, search
from ..selectors import (
    Page,
    contact_with_details,
    conversation_page,
    conversation_with_card,
    message_page,
)
from ..serializers import (
    AvailabilitySerializer,
    BulkConversationResultSerializer,
    BulkConversationUpdateSerializer,
    ContactDetailSerializer,
    ContactSerializer,
    ContactUpdateSerializer,
    ConversationDetailSerializer,
    ConversationSerializer,
    ConversationUpdateSerializer,
    MessageSerializer,
    SendMessageSerializer,
    TemplateSerializer,
    conversation_row_payload,
    message_row_payload,
)
from ..services.assignment import AvailabilityRejected, availability_for, set_availability
from ..services.contacts import ContactChangeRejected, rejection_detail, update_contact
from ..services.conversations import ConversationChangeRejected, mark_read, update_conversation
from ..services.labels import load_labels
from ..services.send import SendRejected, retry_failed_message, send_message
from .schema import errors, page_of, search_result_serializer

LIST_PARAMS = [
    OpenApiParameter("status", str, enum=["open", "pending", "snoozed", "resolved"]),
    OpenApiParameter("channel", int),
    OpenApiParameter("assignee", str, description="a user id, `me` or `none`"),
    OpenApiParameter("unread", bool, description="`true` / `false` (or `1` / `0`)"),
    OpenApiParameter("label", int, description="a label id: only conversations with it"),
    OpenApiParameter("q", str, description="search contact name, phone, email, subject"),
    OpenApiParameter("from_date", str, description="YYYY-MM-DD or ISO 8601 (alias fromDate)"),
    OpenApiParameter("to_date", str, description="YYYY-MM-DD or ISO 8601 (alias toDate)"),
    OpenApiParameter("archived", bool, description="`true` / `false` (or `1` / `0`)"),
    OpenApiParameter("team", str, description="a team id or `none`"),
    OpenApiParameter("cursor", str),
    OpenApiParameter("page_size", int, description="1 to 100, default 25"),
]

SEARCH_PARAMS = [
    OpenApiParameter(
        "q",
        str,
        required=True,
        description="words of a message or email subject, a (partial) name, phone number in "
        "any formatting, email or username; 1 to 200 characters",
    ),
    OpenApiParameter(
        "type",
        str,
        enum=["all", *GROUPS],
        description="one group only (needed with `cursor`); default all",
    ),
    OpenApiParameter("status", str, enum=["open", "pending", "snoozed", "resolved"]),
    OpenApiParameter("channel", int),
    OpenApiParameter("assignee", str, description="a user id, `me` or `none`"),
    OpenApiParameter("team", str, description="a team id or `none`"),
    OpenApiParameter("unread", bool, description="`true` / `false` (or `1` / `0`)"),
    OpenApiParameter(
        "archived", bool, description="`true` / `false`; absent: archived conversations too"
    ),
    OpenApiParameter("cursor", str, description="a group's next_cursor (with `type`)"),
    OpenApiParameter(
        "page_size", int, description="1 to 100; default 10 per group, 25 with `type`"
    ),
]


def _page_response(page: Page, payload) -> Response:
    """A page as plain dicts. A serializer's ReturnList points back at the serializer and its
    model instances, and DRF's response and view point at each other: the whole page would
    then wait for a full garbage collection (~100 ms pauses) instead of being freed at once."""
    return Response(
        {"results": [payload(item) for item in page.items], "next_cursor": page.next_cursor}
    )


class ConversationListView(APIView):
    @extend_schema(
        operation_id="api_v1_conversations_list",
        parameters=LIST_PARAMS,
        responses={
            200: page_of("ConversationPage", ConversationSerializer(many=True)),
            **errors(400),
        },
    )
    def get(self, request):
        page = conversation_page(request.user, request.query_params)
        return _page_response(page, conversation_row_payload)


class SearchView(APIView):
    @extend_schema(
        operation_id="api_v1_search",
        parameters=SEARCH_PARAMS,
        responses={200: search_result_serializer(), **errors(400)},
        description="Search over all history, grouped; only what the caller may see, never "
        "counted. A group is present when asked for (`type`).",
    )
    def get(self, request):
        return Response(result_payload(search(request.user, request.query_params)))


class ConversationDetailView(APIView):
    @extend_schema(responses={200: ConversationDetailSerializer, **errors(404)})
    def get(self, request, conversation_id: int):
        conversation = conversation_with_card(conversation_id, request.user)
        return Response(ConversationDetailSerializer(conversation).data)

    @extend_schema(
        request=ConversationUpdateSerializer,
        responses={200: ConversationSerializer, **errors(400, 404)},
    )
    def patch(self, request, conversation_id: int):
        serializer = ConversationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            conversation = access_conversation_by_id(request.user, conversation_id, for_update=True)
            load_labels([conversation])  # the event and the answer carry them
            try:
                update_conversation(
                    conversation, changes=serializer.validated_data, actor=request.user
                )
            except ConversationChangeRejected as exc:
                raise ValidationError({exc.field: [str(exc)]}) from exc
        return Response(ConversationSerializer(conversation).data)


class ConversationBulkView(APIView):
    @extend_schema(
        operation_id="api_v1_conversations_bulk",
        request=BulkConversationUpdateSerializer,
        responses={200: BulkConversationResultSerializer, **errors(400)},
        description="Assign, set the status of or snooze up to 100 conversations at once. All "
        "or nothing: an id the user may not see, or a change one conversation refuses, is a "
        "400 naming it, and nothing is changed.",
    )
    def post(self, request):
        serializer = BulkConversationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        ids = changes.pop("ids")
        with transaction.atomic():
            conversations, missing = access_conversations_by_ids(request.user, ids, for_update=True)
            if missing:
                listed = ", ".join(map(str, missing))
                raise ValidationError({"ids": [f"conversation(s) not found: {listed}"]})
            # The answer's conversations carry their labels, as the schema says (one query).
            load_labels(conversations)
            for conversation in conversations:
                try:
                    update_conversation(conversation, changes=changes)
                except ConversationChangeRejected as exc:
                    raise ValidationError(
                        {exc.field: [f"conversation {conversation.pk}: {exc}"]}
                    ) from exc
        by_id = {conversation.pk: conversation for conversation in conversations}
        return Response(
            {"results": [ConversationSerializer(by_id[i]).data for i in dict.fromkeys(ids)]}
        )


class AvailabilityView(APIView):
    @extend_schema(
        operation_id="api_v1_availability_retrieve",
        responses={200: AvailabilitySerializer, **errors()},
        description="The signed-in manager's availability for auto-assignment.",
    )
    def get(self, request):
        return Response(AvailabilitySerializer(availability_for(request.user)).data)

    @extend_schema(
        operation_id="api_v1_availability_update",
        request=AvailabilitySerializer,
        responses={200: AvailabilitySerializer, **errors(400)},
        description="Set the signed-in manager's availability: online, busy or offline.",
    )
    def patch(self, request):
        serializer = AvailabilitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            availability = set_availability(
                request.user, status=serializer.validated_data["status"]
            )
        except AvailabilityRejected as exc:
            raise ValidationError({"status": [str(exc)]}) from exc
        return Response(AvailabilitySerializer(availability).data)


class ConversationReadView(APIView):
    @extend_schema(request=None, responses={200: ConversationSerializer, **errors(404)})
    def post(self, request, conversation_id: int):
        with transaction.atomic():  # the event's payload is the locked row's
            conversation = access_conversation_by_id(request.user, conversation_id, for_update=True)
            load_labels([conversation])
            mark_read(conversation)
        return Response(ConversationSerializer(conversation).data)


class MessageListView(APIView):
    @extend_schema(
        operation_id="api_v1_conversations_messages_list",
        parameters=[
            OpenApiParameter("before", str, description="the next_cursor of the previous page"),
            OpenApiParameter(
                "around",
                int,
                description="a message id (a search hit): the page around it, older and newer",
            ),
            OpenApiParameter(
                "after", str, description="the newer_cursor of a page: the messages just newer"
            ),
            OpenApiParameter("page_size", int, description="1 to 200, default 50"),
        ],
        responses={
            200: page_of(
                "MessagePage",
                MessageSerializer(many=True),
                extra_fields={
                    "newer_cursor": serializers.CharField(
                        allow_null=True,
                        help_text="with `around` / `after`: pass as `after` for newer messages",
                    )
                },
            ),
            **errors(400, 404),
        },
    )
    def get(self, request, conversation_id: int):
        page = message_page(
            access_conversation_id(request.user, conversation_id), request.query_params
        )
        response = _page_response(page, message_row_payload)
        response.data["newer_cursor"] = page.newer_cursor
        return response

    @extend_schema(
        request=SendMessageSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(MessageSerializer, description="already sent with this client_id"),
            **errors(400, 404),
        },
    )
    def post(self, request, conversation_id: int):
        serializer = SendMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        conversation = access_conversation_by_id(request.user, conversation_id)
        data = serializer.validated_data
        try:
            outcome = send_message(
                conversation=conversation,
                user=request.user,
                client_id=data["client_id"],
                content=data["content"],
                kind=data["kind"],
                reply_to_id=data.get("reply_to_id"),
                email=data.get("email"),
                template=data.get("template"),
            )
        except SendRejected as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(
            MessageSerializer(outcome.message).data,
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )


class TemplateListView(APIView):
    @extend_schema(
        operation_id="api_v1_conversations_templates_list",
        responses={
            200: inline_serializer(
                name="TemplateList", fields={"results": TemplateSerializer(many=True)}
            ),
            **errors(404),
        },
    )
    def get(self, request, conversation_id: int):
        """The approved message templates that can be sent in this conversation (empty on
        channels without templates); send one with POST …/messages/ `{client_id, template}`."""
        conversation = access_conversation_by_id(request.user, conversation_id)
        return Response({"results": message_templates(conversation)})


class MessageRetryView(APIView):
    @extend_schema(request=None, responses={200: MessageSerializer, **errors(404, 409)})
    def post(self, request, message_id: int):
        message = access_message_by_id(request.user, message_id)
        if not retry_failed_message(message):
            return Response(
                {"detail": f"message {message_id} is not a failed or unknown outbound message"},
                status=status.HTTP_409_CONFLICT,
            )
        message.refresh_from_db()
        return Response(MessageSerializer(message).data)


class ContactListView(APIView):
    @extend_schema(
        operation_id="api_v1_contacts_list",
        parameters=[
            OpenApiParameter(
                "q",
                str,
                description="a (partial) name, email or username, or a phone number in any "
                "formatting (+1 555-123-4567 finds 15551234567); empty: every contact",
            ),
            OpenApiParameter("cursor", str, description="the next_cursor of the previous page"),
            OpenApiParameter("page_size", int, description="1 to 100, default 25"),
        ],
        responses={
            200: page_of(
                "ContactPage",
                inline_serializer(
                    name="ContactListItem",
                    many=True,
                    fields={
                        **ContactSerializer().get_fields(),
                        "latest_conversation_id": serializers.IntegerField(
                            allow_null=True,
                            help_text="their most recent conversation the caller may see",
                        ),
                    },
                ),
            ),
            **errors(400),
        },
        description="The contacts the caller may see (a manager: those with a conversation on "
        "one of their channels), newest first, never counted.",
    )
    def get(self, request):
        return Response(contact_list_payload(contact_list(request.user, request.query_params)))


class ContactDetailView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(responses={200: ContactDetailSerializer, **errors(404)})
    def get(self, request, contact_id: int):
        contact = contact_with_details(request.user, contact_id)
        return Response(ContactDetailSerializer(contact).data)

    @extend_schema(
        request=ContactUpdateSerializer,
        responses={200: ContactDetailSerializer, **errors(400, 404)},
        description="Change the contact's details, note and custom attributes (only the keys "
        "given); a value of the wrong type is a 400 naming the attribute. An audit row and a "
        "`contact.updated` event.",
    )
    def patch(self, request, contact_id: int):
        contact = access_contact_by_id(request.user, contact_id)
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": ["send a JSON object"]})
        try:
            update_contact(contact.pk, dict(request.data), actor=request.user)
        except ContactChangeRejected as exc:
            raise ValidationError(rejection_detail(exc)) from exc
        contact = contact_with_details(request.user, contact.pk)
        return Response(ContactDetailSerializer(contact).data)
