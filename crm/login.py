"""Sign-in (`/accounts/login/` and `/admin/login/`) with a brake on password guessing.

Every attempt takes a number from an atomic counter (crm/throttle.py) *before* any password is
looked at: per address + username (LOGIN_RATE_LIMIT, 10 per 5 minutes) and per address
(LOGIN_ADDRESS_RATE_LIMIT, for guessing across usernames). An attempt over either limit is
refused at once with 429, so 25 concurrent guesses against a limit of 10 get exactly 10 checked.
A successful sign-in clears its address + username count and gives back its address count.
The address is the one our proxy saw (crm/proxy.py), so X-Forwarded-For cannot be spoofed past it.
"""

import hashlib
from functools import wraps

from django.conf import settings
from django.contrib.auth import user_logged_in, user_login_failed
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.dispatch import receiver
from django.http import HttpResponse
from django.template.loader import render_to_string

from . import throttle
from .auth import SignInBusy

BUSY_RETRY_SECONDS = 5


def _counters(request) -> tuple[str, str]:
    address = request.META.get("REMOTE_ADDR", "")
    username = (request.POST.get("username") or "").strip().lower()
    # Hashed: the username is whatever the client sent, of any length.
    digest = hashlib.sha256(username.encode()).hexdigest()[:32]
    return f"login:{address}:{digest}", f"login-address:{address}"


@receiver(user_logged_in)
def _remember_success(sender, request, user, **kwargs):
    if request is not None:
        request.sign_in_succeeded = True


def _address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


@receiver(user_logged_in, dispatch_uid="audit_login")
def _audit_login(sender, request, user, **kwargs):
    """A sign-in is an audit row (who, from where)."""
    from communications.models import Activity
    from communications.services.activity import record_audit

    record_audit(
        Activity.Verb.LOGIN,
        subject_type=Activity.Subject.USER,
        subject_id=user.pk,
        subject_repr=user.get_username(),
        before={},
        after={"address": _address(request)},
        actor=user,
    )


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _audit_login_failed(sender, credentials, request=None, **kwargs):
    """A failed sign-in is an audit row: the username tried and the address, never the
    password (Django hands it over masked; it is not read here at all)."""
    from communications.models import Activity
    from communications.services.activity import record_audit

    username = str(credentials.get("username") or "")[:150]
    record_audit(
        Activity.Verb.LOGIN_FAILED,
        subject_type=Activity.Subject.USER,
        subject_id=None,
        subject_repr=username,
        before={},
        after={"username": username, "address": _address(request)},
    )


def braked_login(refuse):
    """Wrap a login view: count the POST first, refuse over the limits, clear on success.
    `refuse(request, rate_or_none)` builds the 429 (None: busy rather than locked out)."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method != "POST":
                return view(request, *args, **kwargs)
            pair, address = _counters(request)
            pair_rate = throttle.Rate.parse(settings.LOGIN_RATE_LIMIT)
            address_rate = throttle.Rate.parse(settings.LOGIN_ADDRESS_RATE_LIMIT)
            over_pair = throttle.hit(pair, pair_rate.seconds) > pair_rate.limit
            over_address = throttle.hit(address, address_rate.seconds) > address_rate.limit
            if over_pair or over_address:
                return refuse(request, pair_rate if over_pair else address_rate)
            try:
                response = view(request, *args, **kwargs)
            except SignInBusy:  # no password was checked: this attempt does not count
                throttle.refund(pair)
                throttle.refund(address)
                return refuse(request, None)
            if getattr(request, "sign_in_succeeded", False):
                throttle.reset(pair)
                throttle.refund(address)
            return response

        return wrapper

    return decorate


def _retry(rate) -> tuple[int, int]:
    seconds = rate.seconds if rate is not None else BUSY_RETRY_SECONDS
    return seconds, max(1, seconds // 60)


def _refuse_page(request, rate):
    seconds, minutes = _retry(rate)
    body = render_to_string(
        "registration/login.html",
        {
            "form": AuthenticationForm(request),
            "locked_out": rate is not None,
            "busy": rate is None,
            "retry_minutes": minutes,
        },
        request=request,
    )
    response = HttpResponse(body, status=429)
    response["Retry-After"] = str(seconds)
    return response


def _refuse_plain(request, rate):
    seconds, minutes = _retry(rate)
    if rate is None:
        text = "Sign-in is busy right now. Try again in a few seconds."
    else:
        text = f"Too many failed sign-ins. Wait {minutes} minutes and try again."
    response = HttpResponse(text, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response


# CsrfViewMiddleware runs before these: a forged cross-site POST never counts against anyone.
login_view = braked_login(_refuse_page)(auth_views.LoginView.as_view())


@braked_login(_refuse_plain)
def admin_login_view(request, *args, **kwargs):
    from django.contrib import admin

    return admin.site.login(request, *args, **kwargs)
