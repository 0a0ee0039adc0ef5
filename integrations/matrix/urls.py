"""Mounted at /matrix/appservice/ (the `url` of our appservice registration)."""

from django.urls import path

from . import appservice

urlpatterns = [
    path(
        "_matrix/app/v1/transactions/<str:txn_id>",
        appservice.transaction_view,
        name="matrix-appservice-transaction",
    ),
    path("transactions/<str:txn_id>", appservice.transaction_view),  # legacy path
    path("_matrix/app/v1/ping", appservice.ping_view),
    path("_matrix/app/v1/users/<str:user_id>", appservice.user_query_view),
    path("_matrix/app/v1/rooms/<str:alias>", appservice.room_query_view),
]
