"""Merge and split (issue 14 item 6): thin views over communications/services/merge.py.

A user merges only what they may see (communications/access.py): a conversation or contact
they cannot see is a 404, as everywhere."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.safe_json import SafeJSONParser

from ..access import access_conversation_by_id, conversations_for
from ..models import Conversation, Merge
from ..selectors import duplicate_contacts, merge_candidates, visible_contacts
from ..serializers import (
    ContactSerializer,
    ConversationSerializer,
    contact_payload,
    conversation_payload,
)
from ..services.labels import load_labels
from ..services.merge import (
    MergeConflict,
    MergeRejected,
    merge_contacts,
    merge_conversations,
    split_conversation,
    unmerge_contact,
    unmerge_conversation,
)
from .schema import errors


class ConversationMergeSerializer(serializers.Serializer):
    conversation_id = serializers.IntegerField(
        help_text="the conversation merged into this one (it is archived and points here)"
    )
    merge_contacts = serializers.BooleanField(
        default=False,
        help_text="the two conversations belong to different contacts (the same person on "
        "WhatsApp and email): merge that contact into this one's first",
    )


class SplitSerializer(serializers.Serializer):
    message_id = serializers.IntegerField(
        help_text="this message and every later one move to a new conversation"
    )


class ContactMergeSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField(help_text="the contact merged into this one")


class MergeInfoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    undo_until = serializers.DateTimeField(help_text="the merge can be undone until then")


MergeResultSerializer = inline_serializer(
    "ConversationMergeResult",
    {
        "conversation": ConversationSerializer(help_text="the survivor"),
        "merged": ConversationSerializer(help_text="the merged-away one (archived)"),
        "merge": MergeInfoSerializer(),
    },
)

DuplicateSerializer = lambda **kwargs: inline_serializer(  # noqa: E731
    "DuplicateContact",
    **kwargs,
    fields={
        "contact": ContactSerializer(),
        "reasons": serializers.ListField(
            child=serializers.ChoiceField(choices=["phone", "email"]),
            help_text="what they share: the phone number (E.164) and/or the email address",
        ),
    },
)

CandidateSerializer = lambda **kwargs: inline_serializer(  # noqa: E731
    "MergeCandidate",
    **kwargs,
    fields={
        "conversation": ConversationSerializer(),
        "same_contact": serializers.BooleanField(
            help_text="false: a duplicate contact's (merging needs merge_contacts: true)"
        ),
        "reasons": serializers.ListField(child=serializers.CharField()),
    },
)


def _merge_info(merge: Merge) -> dict:
    return {"id": merge.pk, "undo_until": merge.undo_until.isoformat()}


def _refused(exc: Exception) -> Response:
    if isinstance(exc, MergeConflict):
        return Response({"detail": str(exc)}, status=409)
    raise ValidationError({exc.field: [str(exc)]}) from exc


def _fresh(conversation_ids: list[int]) -> dict[int, Conversation]:
    rows = list(
        Conversation.objects.filter(pk__in=conversation_ids)
        .select_related("contact", "channel", "assignee")
        .defer("channel__secrets")
    )
    load_labels(rows)
    return {row.pk: row for row in rows}


class ConversationMergeView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="api_v1_conversations_merge",
        request=ConversationMergeSerializer,
        responses={200: MergeResultSerializer, **errors(400, 404, 409)},
        description="Merge another conversation of the same contact into this one: its "
        "messages, notes, mentions and labels move here, it is archived and points here "
        "(`merged_into_id`), and the customer's next message on its chat arrives here. "
        "Conversations of different channels may be merged; replies go out through this "
        "one's channel. Different contacts need `merge_contacts: true`. Undo within "
        "MERGE_UNDO_HOURS (24) with POST …/<merged id>/unmerge/. 409: one of them is "
        "already merged away.",
    )
    def post(self, request, conversation_id: int):
        serializer = ConversationMergeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        other_id = serializer.validated_data["conversation_id"]
        missing = _not_both_visible(
            conversations_for(request.user), conversation_id, other_id, "conversation"
        )
        if missing:
            return missing
        try:
            result = merge_conversations(
                conversation_id,
                other_id,
                actor=request.user,
                merge_contacts=serializer.validated_data["merge_contacts"],
            )
        except (MergeRejected, MergeConflict) as exc:
            return _refused(exc)
        rows = _fresh([result.survivor.pk, result.merged.pk])
        return Response(
            {
                "conversation": conversation_payload(rows[result.survivor.pk]),
                "merged": conversation_payload(rows[result.merged.pk]),
                "merge": _merge_info(result.merge),
            }
        )


class ConversationUnmergeView(APIView):
    parser_classes = [SafeJSONParser]

    @extend_schema(
        operation_id="api_v1_conversations_unmerge",
        request=None,
        responses={200: MergeResultSerializer, **errors(404, 409)},
        description="Undo the merge of this (merged-away) conversation: exactly what moved "
        "goes back. 409 when it is not merged, after MERGE_UNDO_HOURS, or while the "
        "conversation it was merged into is itself merged away.",
    )
    def post(self, request, conversation_id: int):
        if not conversations_for(request.user).filter(pk=conversation_id).exists():
            return Response({"detail": "conversation not found"}, status=404)
        try:
            result = unmerge_conversation(conversation_id, actor=request.user)
        except (MergeRejected, MergeConflict) as exc:
            return _refused(exc)
        rows = _fresh([result.survivor.pk, result.merged.pk])
        return Response(
            {
                "conversation": conversation_payload(rows[result.survivor.pk]),
                "merged": conversation_payload(rows[result.merged.pk]),
                "merge": _merge_info(result.merge),
            }
        )


class ConversationSplitView(APIView):
    parser_classes = [SafeJSONParser]

    @extend_schema(
        operation_id="api_v1_conversations_split",
        request=SplitSerializer,
        responses={
            201: inline_serializer(
                "ConversationSplitResult",
                {
                    "conversation": ConversationSerializer(help_text="this one, what stayed"),
                    "split": ConversationSerializer(help_text="the new conversation"),
                },
            ),
            **errors(400, 404, 409),
        },
        description="Move a message and every later one into a new conversation (same "
        "channel, contact, assignee, team and labels). The customer's next message on the "
        "chat still arrives in this one.",
    )
    def post(self, request, conversation_id: int):
        serializer = SplitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        access_conversation_by_id(request.user, conversation_id)  # 404 unless visible
        try:
            new = split_conversation(
                conversation_id, serializer.validated_data["message_id"], actor=request.user
            )
        except (MergeRejected, MergeConflict) as exc:
            return _refused(exc)
        rows = _fresh([conversation_id, new.pk])
        return Response(
            {
                "conversation": conversation_payload(rows[conversation_id]),
                "split": conversation_payload(rows[new.pk]),
            },
            status=201,
        )


class MergeCandidatesView(APIView):
    @extend_schema(
        operation_id="api_v1_conversations_merge_candidates",
        responses={
            200: inline_serializer("MergeCandidates", {"results": CandidateSerializer(many=True)}),
            **errors(404),
        },
        description="What this conversation can be merged with: the other conversations of "
        "its contact and of duplicate contacts (same phone or email), newest first, up to 50.",
    )
    def get(self, request, conversation_id: int):
        conversation = access_conversation_by_id(request.user, conversation_id)
        results = merge_candidates(request.user, conversation)
        return Response(
            {
                "results": [
                    {
                        "conversation": conversation_payload(item["conversation"]),
                        "same_contact": item["same_contact"],
                        "reasons": item["reasons"],
                    }
                    for item in results
                ]
            }
        )


def _visible_contact(user, contact_id):
    return visible_contacts(user).filter(pk=contact_id).first()


class ContactDuplicatesView(APIView):
    @extend_schema(
        operation_id="api_v1_contacts_duplicates",
        responses={
            200: inline_serializer(
                "DuplicateContacts", {"results": DuplicateSerializer(many=True)}
            ),
            **errors(404),
        },
        description="Contacts that look like the same person: the same phone number "
        "(compared in E.164, whatever the formatting) or email address (any case). Merge one "
        "with POST /api/v1/contacts/<id>/merge/.",
    )
    def get(self, request, contact_id: int):
        contact = _visible_contact(request.user, contact_id)
        if contact is None:
            return Response({"detail": "contact not found"}, status=404)
        return Response(
            {
                "results": [
                    {"contact": contact_payload(item["contact"]), "reasons": item["reasons"]}
                    for item in duplicate_contacts(request.user, contact)
                ]
            }
        )


ContactMergeResult = inline_serializer(
    "ContactMergeResult", {"contact": ContactSerializer(), "merge": MergeInfoSerializer()}
)


class ContactMergeView(APIView):
    parser_classes = [SafeJSONParser]

    @extend_schema(
        operation_id="api_v1_contacts_merge",
        request=ContactMergeSerializer,
        responses={200: ContactMergeResult, **errors(400, 404, 409)},
        description="Merge another contact (the same person on another channel) into this "
        "one: its identities, conversations, orders and labels move here, blank details are "
        "filled from it, its notes appended. Undo within MERGE_UNDO_HOURS with POST "
        "/api/v1/contacts/<merged id>/unmerge/.",
    )
    def post(self, request, contact_id: int):
        serializer = ContactMergeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        other_id = serializer.validated_data["contact_id"]
        missing = _not_both_visible(visible_contacts(request.user), contact_id, other_id, "contact")
        if missing:
            return missing
        try:
            merge = merge_contacts(contact_id, other_id, actor=request.user)
        except (MergeRejected, MergeConflict) as exc:
            return _refused(exc)
        merge.target_contact.refresh_from_db()
        return Response(
            {"contact": contact_payload(merge.target_contact), "merge": _merge_info(merge)}
        )


class ContactUnmergeView(APIView):
    parser_classes = [SafeJSONParser]

    @extend_schema(
        operation_id="api_v1_contacts_unmerge",
        request=None,
        responses={200: ContactMergeResult, **errors(404, 409)},
        description="Undo the merge of this (merged-away) contact, within MERGE_UNDO_HOURS.",
    )
    def post(self, request, contact_id: int):
        from crm.models import Contact

        contact = Contact.objects.filter(pk=contact_id).first()
        # A merged-away contact's conversations are its survivor's now: it is visible when
        # the contact it was merged into is.
        if contact is None or (
            _visible_contact(request.user, contact.merged_into_id or contact.pk) is None
        ):
            return Response({"detail": "contact not found"}, status=404)
        try:
            merge = unmerge_contact(contact_id, actor=request.user)
        except (MergeRejected, MergeConflict) as exc:
            return _refused(exc)
        contact.refresh_from_db()
        return Response({"contact": contact_payload(contact), "merge": _merge_info(merge)})


__all__ = ["OpenApiResponse"]


def _not_both_visible(visible_rows, this_id: int, other_id: int, noun: str) -> Response | None:
    """A 404 naming the one of the two the user may not see (one query), else None."""
    visible = set(visible_rows.filter(pk__in=[this_id, other_id]).values_list("pk", flat=True))
    if this_id not in visible:
        return Response({"detail": f"{noun} not found"}, status=404)
    if other_id != this_id and other_id not in visible:
        return Response({"detail": f"{noun} {other_id} not found"}, status=404)
    return None
