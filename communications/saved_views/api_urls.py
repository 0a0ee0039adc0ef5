from django.urls import path

from . import api

urlpatterns = [
    path("", api.SavedViewListView.as_view(), name="api-views"),
    path("<int:view_id>/", api.SavedViewDetailView.as_view(), name="api-view"),
]
