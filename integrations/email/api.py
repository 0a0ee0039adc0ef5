"""`POST /api/v1/channels/<id>/email-import/`: import the channel's whole mailbox as a job."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.job_views import JobSerializer
from crm.jobs import JobBusy, job_payload

from .import_job import start_import
from .models import EmailAccount


class EmailImportView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=None,
        responses={
            202: JobSerializer,
            403: OpenApiResponse(description="only staff may import a mailbox"),
            404: OpenApiResponse(description="no email account on this channel"),
            409: OpenApiResponse(JobSerializer, description="an import is already queued/running"),
        },
        summary="Import the whole mailbox of an email channel (a job; staff only)",
    )
    def post(self, request, channel_id: int):
        account = EmailAccount.objects.filter(channel_id=channel_id).first()
        if account is None:
            return Response(
                {"detail": f"channel {channel_id} has no email account (admin → Email accounts)"},
                status=404,
            )
        try:
            job = start_import(account, request.user)
        except JobBusy as busy:
            return Response(
                {**job_payload(busy.job), "detail": "an import of this mailbox is running"},
                status=409,
            )
        return Response(job_payload(job), status=202)
