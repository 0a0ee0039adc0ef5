"""`/api/v1/views/`: the caller's saved views (own and their teams' shared), and changes to
them by their owner or staff. Another manager's private view is a 404, as is a team view for
someone outside the team; a view one sees but may not change is a 403."""

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.safe_json import SafeJSONParser

from ..api.schema import ErrorSerializer, errors
from ..selectors import VIEW_FILTERS
from . import services

FORBIDDEN = OpenApiResponse(
    ErrorSerializer, description="only the view's owner or staff may change or delete it"
)
FILTERS_HELP = (
    "the inbox list's filters (GET /api/v1/conversations/): "
    + ", ".join(VIEW_FILTERS)
    + '. e.g. {"status": "open", "assignee": "me", "label": 3, "unread": true}; assignee: '
    '"me", "none" or a user id; team: "none" or a team id. Any other key, or a value the list '
    "refuses, is a 400 naming it"
)


class ViewTeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ViewOwnerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SavedViewSerializer(serializers.Serializer):
    """The one JSON shape of a saved view (services.view_payload)."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=services.NAME_MAX)
    filters = serializers.DictField(required=False, default=dict, help_text=FILTERS_HELP)
    team_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        write_only=True,
        help_text="share with this team (one of the owner's); null or absent: private",
    )
    params = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text="the filters as the list's query parameters",
    )
    shared = serializers.BooleanField(read_only=True)
    team = ViewTeamSerializer(read_only=True, allow_null=True)
    owner = ViewOwnerSerializer(read_only=True)
    can_edit = serializers.BooleanField(
        read_only=True, help_text="the caller may rename, change or delete it"
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class SavedViewUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=services.NAME_MAX, required=False)
    filters = serializers.DictField(required=False, help_text="replaces the view's filters")
    team_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="a team of the owner's, or null: private"
    )


def _rejected(exc: services.ViewRejected):
    return ValidationError(exc.detail)


def _visible_view(user, view_id):
    view = services.views_for(user).filter(pk=view_id).first()
    if view is None:
        raise Http404("view not found")
    return view


class SavedViewListView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(
        operation_id="api_v1_views_list",
        responses={
            200: inline_serializer("SavedViewList", {"results": SavedViewSerializer(many=True)}),
            **errors(),
        },
        description="The caller's own views and those shared with their teams, by name. "
        "Their counts are the inbox's (/inbox/counts/), moved live by the events.",
    )
    def get(self, request):
        views = services.views_for(request.user)
        return Response({"results": [services.view_payload(v, request.user) for v in views]})

    @extend_schema(
        request=SavedViewSerializer,
        responses={201: SavedViewSerializer, **errors(400)},
        description="Save filters under a name, private or shared with one of your teams.",
    )
    def post(self, request):
        serializer = SavedViewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            view = services.create_view(
                request.user,
                name=data["name"],
                filters=data.get("filters"),
                team_id=data.get("team_id"),
            )
        except services.ViewRejected as exc:
            raise _rejected(exc) from exc
        return Response(services.view_payload(view, request.user), status=201)


class SavedViewDetailView(APIView):
    parser_classes = [SafeJSONParser]  # JSON bodies only

    @extend_schema(responses={200: SavedViewSerializer, **errors(404)})
    def get(self, request, view_id: int):
        return Response(services.view_payload(_visible_view(request.user, view_id), request.user))

    @extend_schema(
        request=SavedViewUpdateSerializer,
        responses={200: SavedViewSerializer, 403: FORBIDDEN, **errors(400, 404)},
        description="Rename, change the filters of or (un)share a view: its owner or staff.",
    )
    def patch(self, request, view_id: int):
        view = _visible_view(request.user, view_id)
        if not services.can_change(request.user, view):
            return Response({"detail": "only the view's owner or staff may change it"}, status=403)
        serializer = SavedViewUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.update_view(request.user, view, dict(serializer.validated_data))
        except services.ViewRejected as exc:
            raise _rejected(exc) from exc
        return Response(services.view_payload(view, request.user))

    @extend_schema(
        request=None,
        responses={204: None, 403: FORBIDDEN, **errors(404)},
    )
    def delete(self, request, view_id: int):
        view = _visible_view(request.user, view_id)
        if not services.can_change(request.user, view):
            return Response({"detail": "only the view's owner or staff may delete it"}, status=403)
        services.delete_view(view)
        return Response(status=204)
