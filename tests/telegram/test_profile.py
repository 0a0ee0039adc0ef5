"""The participant's name, username and picture from the Bot API (R12's hook)."""

import pytest

from communications.models import ContactIdentity
from communications.providers import Profile, TemporaryDeliveryError, provider_for
from tests import factories

from .conftest import CHAT_ID, error, expect_file, method_path, ok

pytestmark = pytest.mark.django_db


@pytest.fixture
def identity(tg_channel):
    factories.ConversationFactory(channel=tg_channel, external_id=str(CHAT_ID))
    return ContactIdentity.objects.get(channel=tg_channel, external_id=str(CHAT_ID))


def expect_chat(bot_api, **extra):
    bot_api.expect_request(
        method_path("getChat"), method="POST", json={"chat_id": CHAT_ID}
    ).respond_with_json(
        ok(
            {
                "id": CHAT_ID,
                "type": "private",
                "first_name": "Olga",
                "last_name": "Petrova",
                "username": "olga_p",
                "accent_color_id": 3,
                "max_reaction_count": 11,
                **extra,
            }
        )
    )


def test_fetch_profile_reads_the_name_and_the_newest_photo(tg_channel, identity, bot_api):
    expect_chat(bot_api)
    bot_api.expect_request(
        method_path("getUserProfilePhotos"), json={"user_id": CHAT_ID, "limit": 1}
    ).respond_with_json(
        ok(
            {
                "total_count": 3,
                "photos": [
                    [
                        {
                            "file_id": "AgAD-160",
                            "file_unique_id": "a1",
                            "width": 160,
                            "height": 160,
                        },
                        {
                            "file_id": "AgAD-640",
                            "file_unique_id": "a2",
                            "width": 640,
                            "height": 640,
                        },
                        {
                            "file_id": "AgAD-1280",
                            "file_unique_id": "a3",
                            "width": 1280,
                            "height": 1280,
                        },
                    ]
                ],
            }
        )
    )
    jpeg = b"\xff\xd8\xff\xe0avatar"
    expect_file(bot_api, "AgAD-640", "profile_photos/file_9.jpg", jpeg)
    profile = provider_for(tg_channel).fetch_profile(identity)
    assert profile == Profile(
        name="Olga Petrova", username="olga_p", avatar=jpeg, avatar_content_type="image/jpeg"
    )
    paths = [request.path for request, _ in bot_api.log]
    assert paths == [
        method_path("getChat"),
        method_path("getUserProfilePhotos"),
        method_path("getFile"),
        f"/file/bot{tg_channel.secrets['bot_token']}/profile_photos/file_9.jpg",
    ]


def test_a_user_without_a_photo_has_no_avatar(tg_channel, identity, bot_api):
    expect_chat(bot_api)
    bot_api.expect_request(method_path("getUserProfilePhotos")).respond_with_json(
        ok({"total_count": 0, "photos": []})
    )
    profile = provider_for(tg_channel).fetch_profile(identity)
    assert profile == Profile(name="Olga Petrova", username="olga_p")


def test_a_group_uses_its_chat_photo(tg_channel, bot_api):
    factories.ConversationFactory(channel=tg_channel, external_id="-100200300")
    group = ContactIdentity.objects.get(external_id="-100200300")
    bot_api.expect_request(method_path("getChat")).respond_with_json(
        ok(
            {
                "id": -100200300,
                "type": "group",
                "title": "Shop friends",
                "photo": {
                    "small_file_id": "AQAD-small",
                    "small_file_unique_id": "s",
                    "big_file_id": "AQAD-big",
                    "big_file_unique_id": "b",
                },
            }
        )
    )
    expect_file(bot_api, "AQAD-big", "profile_photos/file_10.jpg", b"group-picture")
    profile = provider_for(tg_channel).fetch_profile(group)
    assert (profile.name, profile.avatar) == ("Shop friends", b"group-picture")


def test_flood_control_is_retried_later_and_an_unknown_chat_says_nothing(
    tg_channel, identity, bot_api
):
    bot_api.expect_oneshot_request(method_path("getChat")).respond_with_json(
        error(429, "Too Many Requests: retry after 3", retry_after=3), status=429
    )
    with pytest.raises(TemporaryDeliveryError) as exc:
        provider_for(tg_channel).fetch_profile(identity)
    assert exc.value.retry_after == 3
    bot_api.expect_oneshot_request(method_path("getChat")).respond_with_json(
        error(400, "Bad Request: chat not found"), status=400
    )
    assert provider_for(tg_channel).fetch_profile(identity) is None


def test_without_a_bot_token_there_is_nothing_to_ask(tg_channel, identity, bot_api):
    tg_channel.secrets = {}
    tg_channel.save()
    assert provider_for(tg_channel).fetch_profile(identity) is None
    assert bot_api.log == []


def test_a_new_customer_gets_the_name_and_picture_telegram_has(
    client, tg_channel, bot_api, profile_refresh, django_capture_on_commit_callbacks
):
    """End to end (R12): the first message from a new sender stores the message, then the
    background refresh (eager here) gives the contact Telegram's name and picture, served by us."""
    from io import BytesIO

    from PIL import Image

    from communications.models import Contact

    from .conftest import fixture_json, post_update

    expect_chat(bot_api)
    bot_api.expect_request(method_path("getUserProfilePhotos")).respond_with_json(
        ok({"total_count": 1, "photos": [[{"file_id": "AgAD-640", "file_unique_id": "a2",
                                            "width": 640, "height": 640}]]})
    )  # fmt: skip
    picture = BytesIO()
    Image.new("RGB", (640, 640), (200, 40, 40)).save(picture, "JPEG")
    expect_file(bot_api, "AgAD-640", "profile_photos/file_9.jpg", picture.getvalue())
    update = fixture_json("text.json")
    update["message"]["from"]["id"] = update["message"]["chat"]["id"] = CHAT_ID
    with django_capture_on_commit_callbacks(execute=True):
        assert post_update(client, tg_channel, update).status_code == 200
    contact = Contact.objects.get(identities__channel=tg_channel)
    assert contact.avatar.name.startswith("avatars/")
    with contact.avatar.open("rb") as stored:
        assert Image.open(stored).size == (128, 128)
    identity = contact.identities.get()
    assert identity.username == "olga_p" and identity.profile_refreshed_at is not None
