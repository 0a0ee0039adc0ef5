"""Participant info (R12): names, usernames and pictures from each platform, in the background.

Ingest never waits for a platform: when it meets a new contact identity, or one whose profile is
older than `PROFILE_REFRESH_HOURS`, it queues `tasks.refresh_profile` after commit (the check
reads columns ingest has loaded anyway: no query per message). A per-identity key in the cache,
named after the profile's age, lets 50 messages of one new sender queue one fetch.

The worker asks the channel's provider (`fetch_profile(identity) -> Profile | None`, an optional
hook of `communications.providers`) and stores what it says: names only where known and never
over a name staff typed, the picture as the contact's avatar file (checked, capped, resized to
128 px, written after commit), and `profile_refreshed_at`. Open pages hear `contact.updated`.
A failure never touches the message that brought the identity: it is stored already.
"""

import hashlib
import io
import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from crm.models import Contact

from .. import events
from ..models import Channel, ContactIdentity, Conversation
from ..providers import Profile, profiles_supported, provider_for

logger = logging.getLogger(__name__)

AVATAR_SIZE = 128  # pixels, square
AVATAR_MAX_BYTES = 5 * 1024 * 1024  # what a provider may hand us; larger is refused unread
AVATAR_MAX_PIXELS = 40_000_000  # a decompression bomb is refused before decoding
AVATAR_SOURCE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# How long a queued refresh holds its key: retries of a temporary failure fit inside, and a
# platform that stays down is asked again at most this often (on the sender's next message).
REFRESH_LOCK_SECONDS = 3600
MAX_ATTEMPTS = 5
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 600
# CDNs often say nothing useful about a picture: then its bytes decide (Pillow, allow-listed).
GENERIC_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def refresh_due(identity: ContactIdentity, now=None) -> bool:
    """Whether this identity's profile is missing or older than the configured age."""
    if identity.profile_refreshed_at is None:
        return True
    hours = settings.SWITCHBOARD["PROFILE_REFRESH_HOURS"]
    return identity.profile_refreshed_at < (now or timezone.now()) - timedelta(hours=hours)


def queue_refreshes(channel: Channel, identities: list[ContactIdentity]) -> None:
    """Called by ingest inside its transaction with the identities it read or made: those whose
    profile is due are queued once it commits. Nothing at all for channels whose provider has
    no `fetch_profile`."""
    if not identities or not profiles_supported(channel.kind):
        return
    now = timezone.now()
    due = [
        (identity.pk, _lock_key(identity)) for identity in identities if refresh_due(identity, now)
    ]
    if due:
        transaction.on_commit(lambda: _queue(due))


def _lock_key(identity: ContactIdentity) -> str:
    # Named after the profile's age as ingest saw it: every message that saw the same stale
    # profile shares the key (one fetch); once refreshed, the next due refresh has a new key.
    seen = identity.profile_refreshed_at.timestamp() if identity.profile_refreshed_at else 0
    return f"switchboard:profile-refresh:{identity.pk}:{seen:.6f}"


def _queue(due: list[tuple[int, str]]) -> None:
    from ..tasks import refresh_profile

    try:
        taken = _take_keys([key for _identity_id, key in due])
    except Exception:
        logger.warning("profile refreshes of %s identities not queued: cache down", len(due))
        return
    for (identity_id, key), first in zip(due, taken, strict=True):
        if not first:
            continue  # another message of this sender queued it already
        try:
            refresh_profile.apply_async((identity_id,))
        except Exception:
            # The broker is down: the message is stored; the next message asks again.
            cache.delete(key)
            logger.warning("profile refresh of identity %s not queued: broker down", identity_id)


def _take_keys(keys: list[str]) -> list[bool]:
    """`cache.add(key, 1, REFRESH_LOCK_SECONDS)` for every key; on Redis in one round trip (a
    webhook batch meets hundreds of senders: one round trip each was a fifth of its drain)."""
    from django.core.cache import DEFAULT_CACHE_ALIAS, caches
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(caches[DEFAULT_CACHE_ALIAS], RedisCache) or len(keys) < 2:
        return [cache.add(key, 1, REFRESH_LOCK_SECONDS) for key in keys]
    full = [cache.make_and_validate_key(key) for key in keys]
    pipe = cache._cache.get_client(full[0], write=True).pipeline(transaction=False)
    for name in full:
        pipe.set(name, 1, ex=REFRESH_LOCK_SECONDS, nx=True)
    return [bool(result) for result in pipe.execute()]


def retry_delay(attempt: int) -> int:
    """30 s, 2 min, 8 min, 10 min: inside the refresh key's hour, and never longer than the
    broker's visibility timeout (a countdown past it would be delivered twice)."""
    return min(FIRST_RETRY_SECONDS * 4**attempt, MAX_RETRY_SECONDS)


def fetch(identity: ContactIdentity) -> Profile | None:
    """Ask the identity's provider; None when it has no `fetch_profile` (WhatsApp Cloud gives
    names in its webhooks only). Errors propagate to the task, which sorts them."""
    provider = provider_for(identity.channel)
    fetch_profile = getattr(provider, "fetch_profile", None)
    if fetch_profile is None:
        return None
    return fetch_profile(identity)


def mark_refreshed(identity_id: int) -> None:
    """Nothing to learn (no hook, a permanent failure): ask again only after the full age."""
    ContactIdentity.objects.filter(pk=identity_id).update(profile_refreshed_at=timezone.now())


def store_profile(identity_id: int, profile: Profile | None) -> bool:
    """Apply what the platform said; True when the contact changed (then announced)."""
    avatar = normalise_avatar(profile) if profile is not None else None
    with transaction.atomic():
        identity = ContactIdentity.objects.select_for_update().filter(pk=identity_id).first()
        if identity is None:
            return False
        contact = Contact.objects.select_for_update().get(pk=identity.contact_id)
        identity_updates = {"profile_refreshed_at": timezone.now()}
        contact_updates = {}
        if profile is not None:
            for platform_field, identity_field, contact_field in (
                ("name", "display_name", "name"),
                ("username", "username", "username"),
            ):
                value = getattr(profile, platform_field).strip()[:255]
                if not value:
                    continue  # not known: never overwrites what is stored
                previous = getattr(identity, identity_field)
                if value != previous:
                    identity_updates[identity_field] = value
                # Ingest's rule: the platform fills the contact's name, staff's edits stay.
                # A name equal to the platform's previous one was not typed by staff.
                current = getattr(contact, contact_field)
                if value != current and (not current or current == previous):
                    contact_updates[contact_field] = value
        old_avatar = contact.avatar.name
        if avatar is not None:
            name = f"avatars/{contact.pk}-{hashlib.sha256(avatar).hexdigest()[:20]}.png"
            if name != old_avatar:
                contact_updates["avatar"] = name
                storage = contact.avatar.storage
                transaction.on_commit(lambda: _write_avatar(storage, name, avatar, old_avatar))
        ContactIdentity.objects.filter(pk=identity.pk).update(**identity_updates)
        if not contact_updates:
            return False
        Contact.objects.filter(pk=contact.pk).update(**contact_updates, updated_at=timezone.now())
        for key, value in contact_updates.items():
            setattr(contact, key, value)
        announce_contact(contact)
    return True


def announce_contact(contact: Contact) -> None:
    """`contact.updated` to every channel the contact has conversations on (after commit)."""
    from ..serializers import contact_payload

    payload = contact_payload(contact)
    channel_ids = sorted(
        set(Conversation.objects.filter(contact=contact).values_list("channel_id", flat=True))
    )
    events.record_events(
        [(events.CONTACT_UPDATED, channel_id, None, payload) for channel_id in channel_ids]
    )


def _write_avatar(storage, name: str, data: bytes, old_name: str) -> None:
    # Registered before the event's broadcast: the file is there when pages hear of it.
    try:
        if not storage.exists(name):
            storage.save(name, io.BytesIO(data))
    except OSError:
        logger.exception("avatar file %s could not be written", name)
        Contact.objects.filter(avatar=name).update(avatar=old_name)
        return
    if old_name and old_name != name:
        try:
            storage.delete(old_name)
        except OSError:
            logger.warning("old avatar file %s could not be removed", old_name)


def normalise_avatar(profile: Profile) -> bytes | None:
    """The picture as a PNG of at most 128×128 (square, centred), or None when there is none
    or it is not an image we take (type, size, pixels): logged, the rest of the profile kept."""
    data = profile.avatar
    if not data:
        return None
    content_type = (profile.avatar_content_type or "").split(";", 1)[0].strip().lower()
    if content_type not in AVATAR_SOURCE_TYPES and content_type not in GENERIC_CONTENT_TYPES:
        logger.info("avatar of type %r refused", content_type)
        return None
    if len(data) > AVATAR_MAX_BYTES:
        logger.info("avatar of %d bytes refused (at most %d)", len(data), AVATAR_MAX_BYTES)
        return None
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "PNG", "GIF", "WEBP"):
                logger.info("avatar in format %r refused", image.format)
                return None
            if image.width * image.height > AVATAR_MAX_PIXELS:
                logger.info("avatar of %dx%d pixels refused", image.width, image.height)
                return None
            image.seek(0)  # the first frame of an animation
            picture = ImageOps.exif_transpose(image)
            picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
            picture = ImageOps.fit(picture, (AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            picture.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        logger.info("avatar could not be read as an image: %s", exc)
        return None
