"""Sign-in with a brake on password guessing: a few failures per address and username, then
a pause. Counted in the cache (Redis in production), so every web process shares the count."""

from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpResponse
from django.template.loader import render_to_string

MAX_FAILURES = 10
WINDOW_SECONDS = 300


def _key(request) -> str:
    address = request.META.get("REMOTE_ADDR", "")
    username = (request.POST.get("username") or "").strip().lower()
    return f"switchboard:login-failures:{address}:{username}"


class RateLimitedLoginView(auth_views.LoginView):
    def post(self, request, *args, **kwargs):
        key = _key(request)
        if (cache.get(key) or 0) >= MAX_FAILURES:
            body = render_to_string(
                "registration/login.html",
                {
                    "form": self.get_form(),
                    "locked_out": True,
                    "retry_minutes": WINDOW_SECONDS // 60,
                },
                request=request,
            )
            return HttpResponse(body, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = _key(self.request)
        if not cache.add(key, 1, timeout=WINDOW_SECONDS):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=WINDOW_SECONDS)
        return super().form_invalid(form)

    def form_valid(self, form):
        cache.delete(_key(self.request))
        return super().form_valid(form)
