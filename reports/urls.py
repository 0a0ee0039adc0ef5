from django.urls import path

from . import api, pages

urlpatterns = [
    path("reports/", pages.reports_page, name="reports"),
    path("api/v1/reports/<str:name>/", api.ReportView.as_view(), name="api-report"),
    path("api/v1/exports/", api.ExportListView.as_view(), name="api-exports"),
    path("api/v1/exports/<int:job_id>/", api.ExportDetailView.as_view(), name="api-export"),
    path(
        "api/v1/exports/<int:job_id>/download/",
        api.ExportDownloadView.as_view(),
        name="api-export-download",
    ),
]
