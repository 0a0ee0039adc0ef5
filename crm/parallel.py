"""Sync views that must not queue behind each other under ASGI.

Django runs every sync view of an ASGI process on ONE shared thread (sync_to_async with
thread_sensitive=True), so a daphne process works on one request at a time: measured, the
webhook door took ~13 ms a request and a process accepted ~75 a second whatever the
concurrency (bench/realpath.py, docs/ARCHITECTURE.md). `parallel_view` runs a view on the
thread pool instead, so requests overlap while they wait for PostgreSQL and Redis; each
request gives its database connection back to the pool when it is done.

Only for views that need nothing thread-bound (no ORM objects shared between requests).
`PARALLEL_SYNC_VIEWS=False` serves them on the shared thread (the tests' transactional
database is visible only there).
"""

import functools

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections


def _call_and_release(view, request, *args, **kwargs):
    try:
        return view(request, *args, **kwargs)
    finally:
        for connection in connections.all(initialized_only=True):
            connection.close()  # back to the pool (or closed, without one)


def parallel_view(view):
    @functools.wraps(view)
    async def wrapper(request, *args, **kwargs):
        if not settings.PARALLEL_SYNC_VIEWS:
            return await sync_to_async(view, thread_sensitive=True)(request, *args, **kwargs)
        return await sync_to_async(_call_and_release, thread_sensitive=False)(
            view, request, *args, **kwargs
        )

    return wrapper
