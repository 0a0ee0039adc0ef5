"""`/api/v1/reports/<name>/` (the JSON behind each plot) and `/api/v1/exports/` (CSV jobs)."""

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.jobs import JobBusy
from crm.models import Job

from . import exports
from .access import can_view_reports
from .selectors import REPORTS, build_report, report_params

FILTERS = [
    OpenApiParameter(
        "from_date", str, description="first day, YYYY-MM-DD (default: 29 days before to_date)"
    ),
    OpenApiParameter(
        "to_date",
        str,
        description="last day, YYYY-MM-DD, included (default: today); at most 366 days",
    ),
    OpenApiParameter("channel", int, description="only this channel"),
    OpenApiParameter("team", int, description="only conversations of this team"),
]


class ReportView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("name", str, OpenApiParameter.PATH, enum=list(REPORTS)),
            *FILTERS,
        ],
        responses={
            200: OpenApiResponse(description="the report's numbers (see README: reports)"),
            400: OpenApiResponse(
                description="a bad date, to_date before from_date, a range over 366 days"
            ),
            403: OpenApiResponse(description="no permission to read reports"),
            404: OpenApiResponse(description="no such report"),
        },
        summary="A report from the daily rollups: " + ", ".join(REPORTS),
    )
    def get(self, request, name: str):
        if not can_view_reports(request.user):
            return Response({"detail": "you may not read reports"}, status=403)
        if name not in REPORTS:
            return Response(
                {"detail": f"no report '{name}'; reports are {', '.join(REPORTS)}"}, status=404
            )
        return Response(build_report(name, report_params(request.query_params)))


EXPORT_REQUEST = inline_serializer(
    "ExportRequest",
    {
        "report": serializers.ChoiceField(choices=list(REPORTS), required=False),
        "from_date": serializers.DateField(required=False),
        "to_date": serializers.DateField(required=False),
        "channel": serializers.IntegerField(required=False),
        "team": serializers.IntegerField(required=False),
        "conversations": serializers.DictField(
            required=False, help_text="the inbox list's filters (status, channel, team, …)"
        ),
    },
)


class ExportListView(APIView):
    @extend_schema(
        request=EXPORT_REQUEST,
        responses={
            202: OpenApiResponse(description="the export job (state, progress, status_url)"),
            400: OpenApiResponse(description="a bad report name or filter"),
            403: OpenApiResponse(description="a report export without the reports permission"),
            409: OpenApiResponse(description="your previous export is still running: its job"),
        },
        summary="Start a CSV export of a report or of a conversation list filter",
    )
    def post(self, request):
        try:
            job = exports.start_export(request.user, request.data)
        except JobBusy as busy:
            return Response(
                {
                    "detail": "your previous export is still running; one export at a time",
                    "job": exports.export_payload(busy.job),
                },
                status=409,
            )
        return Response(exports.export_payload(job), status=202)


def _export(request, job_id: int):
    jobs = Job.objects.filter(kind=exports.KIND)
    if not request.user.is_staff:
        jobs = jobs.filter(requested_by=request.user)
    return jobs.filter(pk=job_id).first()


class ExportDetailView(APIView):
    @extend_schema(
        responses={
            200: OpenApiResponse(description="state, progress, download_url when done"),
            404: OpenApiResponse(description="no such export (for you)"),
        },
        summary="An export's progress and, when done, its download link",
    )
    def get(self, request, job_id: int):
        job = _export(request, job_id)
        if job is None:
            return Response({"detail": f"no export {job_id} that you can see"}, status=404)
        return Response(exports.export_payload(job))


class ExportDownloadView(APIView):
    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(description="the CSV file"),
            404: OpenApiResponse(description="no such export that you may download"),
            409: OpenApiResponse(description="the export is not done yet"),
            410: OpenApiResponse(description="the export's file is gone"),
        },
        summary="Download a finished export",
    )
    def get(self, request, job_id: int):
        job = _export(request, job_id)
        if job is None or not exports.may_download(request.user, job):
            return Response({"detail": f"no export {job_id} that you can download"}, status=404)
        if job.state != Job.State.DONE:
            return Response({"detail": f"export {job_id} is {job.state}, not done"}, status=409)
        path = job.result.get("file", "")
        if not path or not default_storage.exists(path):
            return Response({"detail": f"export {job_id}'s file is gone"}, status=410)
        return FileResponse(
            default_storage.open(path, "rb"),
            as_attachment=True,
            filename=job.result.get("filename") or "export.csv",
            content_type="text/csv; charset=utf-8",
        )
