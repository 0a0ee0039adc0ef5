"""The "Connect WhatsApp" page and its small JSON endpoints (polled once a second)."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from . import connect
from .client import MatrixUnavailable
from .models import MatrixConnection
from .settings_cache import get_config


def _connection(user) -> MatrixConnection | None:
    return MatrixConnection.objects.filter(user=user).first()


@login_required
@require_GET
def connect_page(request):
    config = get_config()
    return render(
        request,
        "integrations/whatsapp_connect.html",
        {
            "configured": config.configured and config.whatsapp_mode == "matrix",
            "status": connect.connection_status(_connection(request.user)),
        },
    )


@login_required
@require_GET
def connect_status(request):
    return JsonResponse(connect.connection_status(_connection(request.user)))


@login_required
@require_POST
def connect_start(request):
    try:
        connection = connect.start_login(request.user)
    except connect.ConnectError as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    except MatrixUnavailable as exc:
        return JsonResponse({"error": f"the homeserver is not reachable: {exc}"}, status=503)
    return JsonResponse(connect.connection_status(connection))


@login_required
@require_POST
def connect_logout(request):
    if _connection(request.user) is None:
        return JsonResponse(connect.connection_status(None))
    try:
        connection = connect.logout(request.user)
    except MatrixUnavailable as exc:
        return JsonResponse({"error": f"the homeserver is not reachable: {exc}"}, status=503)
    return JsonResponse(connect.connection_status(connection))
