"""`GET /api/v1/jobs/<id>/`: a long job's state and progress (crm/jobs.py), for whoever
started it and for staff."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .jobs import job_payload
from .models import Job


class JobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    state = serializers.ChoiceField(choices=Job.State.choices)
    progress = serializers.DictField(help_text="counters, e.g. scanned / stored / total")
    result = serializers.DictField()
    error = serializers.CharField()
    attempt = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.CharField()


class JobDetailView(APIView):
    @extend_schema(
        responses={200: JobSerializer, 404: OpenApiResponse(description="no such job (for you)")},
        summary="A long job's state and progress",
    )
    def get(self, request, job_id: int):
        jobs = Job.objects.all()
        if not request.user.is_staff:
            jobs = jobs.filter(requested_by=request.user)
        job = jobs.filter(pk=job_id).first()
        if job is None:
            return Response({"detail": f"no job {job_id} that you can see"}, status=404)
        return Response(job_payload(job))
