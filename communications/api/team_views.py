"""The team-workflow API: labels, activity, @mentions and canned responses (issue 14)."""

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import Contact, Label
from crm.safe_json import SafeJSONParser

from ..access import (
    access_conversation_by_id,
    access_conversation_id,
    conversations_for,
    visible_channel_ids,
)
from ..models import CannedResponse
from ..selectors import activity_page, mention_page, mention_row_payload, unread_mention_count
from ..serializers import (
    ActivitySerializer,
    BulkLabelChangeSerializer,
    CannedResponseSerializer,
    CannedResponseUpdateSerializer,
    ContactWithOrdersSerializer,
    ConversationSerializer,
    LabelChangeSerializer,
    LabelSerializer,
    MentionableSerializer,
    MentionReadSerializer,
    MentionSerializer,
    activity_row_payload,
    canned_payload,
    label_payload,
)
from ..services import canned
from ..services.contacts import change_contact_labels
from ..services.labels import (
    LabelRejected,
    bulk_change_conversation_labels,
    change_conversation_labels,
    label_create,
    labels_by_id,
)
from ..services.mentions import mark_mentions_read, mentionable_users
from .params import page_size, text_param
from .schema import ErrorSerializer, errors, page_of

FORBIDDEN = OpenApiResponse(ErrorSerializer, description="only staff may change or delete labels")


def _labels(ids, field):
    try:
        return labels_by_id(ids, field=field)
    except LabelRejected as exc:
        raise ValidationError({exc.field: [str(exc)]}) from exc


# --- labels --------------------------------------------------------------------------------


class LabelListView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="api_v1_labels_list",
        parameters=[
            OpenApiParameter("q", str, description="names containing this"),
            OpenApiParameter("page_size", int, description="1 to 500, default 500"),
        ],
        responses={
            200: inline_serializer("LabelList", {"results": LabelSerializer(many=True)}),
            **errors(400),
        },
    )
    def get(self, request):
        labels = Label.objects.all()
        search = text_param(request.query_params, "q").strip()
        if search:
            labels = labels.filter(name__icontains=search)
        size = page_size(request.query_params, default=500, maximum=500)
        return Response({"results": [label_payload(label) for label in labels[:size]]})

    @extend_schema(
        request=LabelSerializer,
        responses={
            201: LabelSerializer,
            200: OpenApiResponse(LabelSerializer, description="a label of that name exists"),
            **errors(400),
        },
    )
    def post(self, request):
        serializer = LabelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            label, created = label_create(name=data["name"], color=data.get("color"))
        except LabelRejected as exc:
            raise ValidationError({exc.field: [str(exc)]}) from exc
        return Response(label_payload(label), status=201 if created else 200)


class LabelDetailView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    def _label(self, request, label_id):
        if not request.user.is_staff:
            return None, Response(
                {"detail": "only staff may rename, recolour or delete labels"}, status=403
            )
        label = Label.objects.filter(pk=label_id).first()
        if label is None:
            raise Http404("label not found")
        return label, None

    @extend_schema(
        request=LabelSerializer,
        responses={200: LabelSerializer, 403: FORBIDDEN, **errors(400, 404)},
    )
    def patch(self, request, label_id: int):
        label, refused = self._label(request, label_id)
        if refused:
            return refused
        serializer = LabelSerializer(label, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        for field in ("name", "color"):
            if field in serializer.validated_data:
                setattr(label, field, serializer.validated_data[field].strip())
        if not label.name:
            raise ValidationError({"name": ["a label needs a name"]})
        try:
            with transaction.atomic():
                label.save()
        except IntegrityError:
            raise ValidationError({"name": [f"a label named {label.name!r} exists"]}) from None
        return Response(label_payload(label))

    @extend_schema(request=None, responses={204: None, 403: FORBIDDEN, **errors(404)})
    def delete(self, request, label_id: int):
        label, refused = self._label(request, label_id)
        if refused:
            return refused
        label.delete()
        return Response(status=204)


class ConversationLabelsView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        request=LabelChangeSerializer,
        responses={200: ConversationSerializer, **errors(400, 404)},
        description="Add and remove labels (ids); adding one already there changes nothing.",
    )
    def post(self, request, conversation_id: int):
        serializer = LabelChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            conversation = access_conversation_by_id(request.user, conversation_id, for_update=True)
            add = _labels(serializer.validated_data["add"], "add")
            remove = _labels(serializer.validated_data["remove"], "remove")
            change_conversation_labels(conversation, add=add, remove=remove, actor=request.user)
        return Response(ConversationSerializer(conversation).data)


class BulkConversationLabelsView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="api_v1_conversations_bulk_labels",
        request=BulkLabelChangeSerializer,
        responses={
            200: inline_serializer("BulkLabelResult", {"changed": serializers.IntegerField()}),
            **errors(400, 404),
        },
        description="The same labels added to / removed from up to 100 conversations at once; "
        "a conversation the caller cannot see makes it a 404 and nothing changes.",
    )
    def post(self, request):
        serializer = BulkLabelChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ids = list(dict.fromkeys(data["conversation_ids"]))
        visible = set(
            conversations_for(request.user).filter(pk__in=ids).values_list("pk", flat=True)
        )
        missing = [i for i in ids if i not in visible]
        if missing:
            return Response(
                {"detail": f"conversation {', '.join(map(str, missing))} not found"}, status=404
            )
        add, remove = _labels(data["add"], "add"), _labels(data["remove"], "remove")
        changed = bulk_change_conversation_labels(ids, add=add, remove=remove, actor=request.user)
        return Response({"changed": changed})


class ContactLabelsView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        request=LabelChangeSerializer,
        responses={200: ContactWithOrdersSerializer, **errors(400, 404)},
    )
    def post(self, request, contact_id: int):
        serializer = LabelChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contacts = Contact.objects.prefetch_related("orders")
        ids = visible_channel_ids(request.user)
        if ids is not None:
            contacts = contacts.filter(conversations__channel_id__in=ids).distinct()
        contact = contacts.filter(pk=contact_id).first()
        if contact is None:
            return Response({"detail": "contact not found"}, status=404)
        add = _labels(serializer.validated_data["add"], "add")
        remove = _labels(serializer.validated_data["remove"], "remove")
        change_contact_labels(contact, add=add, remove=remove, actor=request.user)
        return Response(ContactWithOrdersSerializer(contact).data)


# --- activity ------------------------------------------------------------------------------


class ActivityListView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="api_v1_conversations_activity_list",
        parameters=[
            OpenApiParameter("before", str, description="the next_cursor of the previous page"),
            OpenApiParameter("page_size", int, description="1 to 200, default 50"),
        ],
        responses={
            200: page_of("ActivityPage", ActivitySerializer(many=True)),
            **errors(400, 404),
        },
        description="Status changes, snoozes, assignments, team moves, archiving and label "
        "changes of a conversation, newest first.",
    )
    def get(self, request, conversation_id: int):
        page = activity_page(
            access_conversation_id(request.user, conversation_id), request.query_params
        )
        return Response(
            {
                "results": [activity_row_payload(row) for row in page.items],
                "next_cursor": page.next_cursor,
            }
        )


# --- mentions ------------------------------------------------------------------------------


class MentionableView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="api_v1_conversations_mentionable_list",
        responses={
            200: inline_serializer(
                "MentionableList", {"results": MentionableSerializer(many=True)}
            ),
            **errors(404),
        },
        description="The managers a note in this conversation can mention (`@username`): "
        "the members of its channel's teams.",
    )
    def get(self, request, conversation_id: int):
        conversation = access_conversation_by_id(request.user, conversation_id)
        users = mentionable_users(conversation)
        return Response(
            {
                "results": [
                    {
                        "id": u.pk,
                        "username": u.get_username(),
                        "name": u.get_full_name() or u.get_username(),
                    }
                    for u in users
                ]
            }
        )


class MentionListView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="api_v1_mentions_list",
        parameters=[
            OpenApiParameter("unread", bool, description="only unread ones"),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int, description="1 to 100, default 25"),
        ],
        responses={
            200: inline_serializer(
                "MentionPage",
                {
                    "results": MentionSerializer(many=True),
                    "next_cursor": serializers.CharField(allow_null=True),
                    "unread_count": serializers.IntegerField(),
                },
            ),
            **errors(400),
        },
        description="The notes that mention the caller, unread first, newest first.",
    )
    def get(self, request):
        page = mention_page(request.user, request.query_params)
        return Response(
            {
                "results": [mention_row_payload(row) for row in page.items],
                "next_cursor": page.next_cursor,
                "unread_count": unread_mention_count(request.user),
            }
        )


class MentionReadView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        request=MentionReadSerializer,
        responses={
            200: inline_serializer(
                "MentionsRead",
                {
                    "marked": serializers.ListField(child=serializers.IntegerField()),
                    "unread_count": serializers.IntegerField(),
                },
            ),
            **errors(400),
        },
    )
    def post(self, request):
        serializer = MentionReadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        marked = mark_mentions_read(
            request.user, ids=data.get("ids"), conversation_id=data.get("conversation_id")
        )
        return Response({"marked": marked, "unread_count": unread_mention_count(request.user)})


# --- canned responses ----------------------------------------------------------------------


def _canned_or_404(user, canned_id) -> CannedResponse:
    found = canned.canned_for(user).filter(pk=canned_id).first()
    if found is None:
        raise Http404("canned response not found")
    return found


def _check_content(content: str) -> None:
    problem = canned.placeholder_problem(content)
    if problem:
        raise ValidationError({"content": [problem]})


class CannedResponseListView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="api_v1_canned_responses_list",
        parameters=[
            OpenApiParameter("q", str, description="search shortcut, title and text"),
            OpenApiParameter(
                "conversation", int, description="fill the placeholders in for this conversation"
            ),
        ],
        responses={
            200: inline_serializer(
                "CannedResponseList", {"results": CannedResponseSerializer(many=True)}
            ),
            **errors(400, 404),
        },
        description="The caller's personal responses and their teams' (at most 200), by shortcut.",
    )
    def get(self, request):
        responses = canned.canned_for(request.user)
        search = (request.query_params.get("q") or "").strip()
        if "\x00" in search:
            raise ValidationError({"q": ["must not contain a NUL character"]})
        if search:
            responses = responses.filter(
                Q(shortcut__icontains=search)
                | Q(title__icontains=search)
                | Q(content__icontains=search)
            )
        conversation = None
        raw = request.query_params.get("conversation")
        if raw:
            try:
                conversation_id = int(raw)
            except ValueError:
                raise ValidationError({"conversation": [f"'{raw}' is not an id"]}) from None
            conversation = access_conversation_by_id(request.user, conversation_id)
        rows = list(responses.order_by("shortcut", "id")[:200])
        return Response(
            {
                "results": [
                    canned_payload(
                        row,
                        canned.render(row.content, conversation=conversation, agent=request.user)
                        if conversation is not None
                        else None,
                    )
                    for row in rows
                ]
            }
        )

    @extend_schema(
        request=CannedResponseSerializer,
        responses={201: CannedResponseSerializer, **errors(400, 409)},
    )
    def post(self, request):
        serializer = CannedResponseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        _check_content(data["content"])
        team = None
        if data["scope"] == "team":
            team = canned.team_choices(request.user).filter(pk=data.get("team_id")).first()
            if team is None:
                raise ValidationError(
                    {"team_id": ["a team-wide response needs team_id of one of your teams"]}
                )
        try:
            with transaction.atomic():
                row = CannedResponse.objects.create(
                    shortcut=data["shortcut"],
                    title=data.get("title", ""),
                    content=data["content"],
                    team=team,
                    owner=None if team else request.user,
                    created_by=request.user,
                )
        except IntegrityError:
            return Response(
                {"detail": f"/{data['shortcut']} exists already in this scope"}, status=409
            )
        return Response(canned_payload(row), status=201)


class CannedResponseDetailView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        request=CannedResponseUpdateSerializer,
        responses={200: CannedResponseSerializer, **errors(400, 404, 409)},
    )
    def patch(self, request, canned_id: int):
        row = _canned_or_404(request.user, canned_id)
        serializer = CannedResponseUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "content" in data:
            _check_content(data["content"])
        for field, value in data.items():
            setattr(row, field, value)
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            return Response({"detail": f"/{row.shortcut} exists already in this scope"}, status=409)
        return Response(canned_payload(row))

    @extend_schema(request=None, responses={204: None, **errors(404)})
    def delete(self, request, canned_id: int):
        _canned_or_404(request.user, canned_id).delete()
        return Response(status=204)
