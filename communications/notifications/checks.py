"""System check: VAPID keys that are set must be a usable pair (`manage.py check`)."""

from django.conf import settings
from django.core.checks import Warning, register

from . import push


@register()
def vapid_keys(app_configs, **kwargs):
    if not (settings.VAPID_PUBLIC_KEY or settings.VAPID_PRIVATE_KEY):
        return []
    try:
        push.vapid()
    except push.PushUnavailable as exc:
        return [
            Warning(
                f"Web Push is off: {exc}",
                hint="Generate a pair with `manage.py webpush_keys` and set both.",
                id="notifications.W001",
            )
        ]
    return []
