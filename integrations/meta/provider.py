"""Outbound Messenger / Instagram messages: `POST {META_GRAPH_BASE}/me/messages` with the page
access token; plus the participant's profile and the admin's connection test.

Channel config: `{"page_id": …}` (Messenger) or `{"instagram_account_id": …}` (Instagram), and
`"human_agent": true` when the page has Meta's Human Agent permission; secrets:
`{"page_access_token": …, "app_secret": …, "verify_token": …}`.

The messaging window: free-form replies only within 24 hours of the customer's last message
(our own replies do not extend it); with the HUMAN_AGENT tag, up to 7 days. The reply box says
so before anyone types (`reply_options`), and `send` refuses without calling Meta.
"""

import json
import logging
from datetime import timedelta

import requests
from django.utils import timezone

from communications.models import Channel, ContactIdentity, Conversation, Message
from communications.providers import MediaFetchError, Profile, ReplyOptions

from ..base import (
    ConfigProblem,
    DeliveryError,
    PermanentDeliveryError,
    SendResult,
    TemporaryDeliveryError,
    request_failure,
)
from . import graph
from .media import download
from .parse import OUR_METADATA_PREFIX, account_id

logger = logging.getLogger(__name__)

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)


def human_agent_enabled(channel: Channel) -> bool:
    return bool((channel.config or {}).get("human_agent"))


def window_problem(channel: Channel, conversation: Conversation) -> str:
    """Why a free-form reply cannot go out now ("" when it can)."""
    name = graph.platform_name(channel)
    last = conversation.last_inbound_at
    age = timezone.now() - last if last else None
    if age is not None and age <= STANDARD_WINDOW:
        return ""
    if human_agent_enabled(channel):
        if age is not None and age <= HUMAN_AGENT_WINDOW:
            return ""
        return (
            f"the customer last wrote more than 7 days ago: {name} allows no reply until "
            "they write again"
        )
    if age is None:
        return f"the customer has not written yet: {name} allows replies only after they do"
    return (
        f"the customer last wrote more than 24 hours ago: {name} allows replies only within 24 "
        "hours of their last message (7 days with the HUMAN_AGENT tag, if an admin enables it "
        "for this page in admin → Channels)"
    )


def messaging_options(channel: Channel, conversation: Conversation) -> dict:
    """RESPONSE inside the 24 hours; the HUMAN_AGENT tag after them (checked beforehand)."""
    last = conversation.last_inbound_at
    if last and timezone.now() - last <= STANDARD_WINDOW:
        return {"messaging_type": "RESPONSE"}
    return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}


def attachment_type(mime_type: str) -> str:
    major = (mime_type or "").split("/")[0]
    return major if major in ("image", "video", "audio") else "file"


class MetaProvider:
    # The Send API has no idempotency key: a second POST is a second message.
    resend_is_safe = False

    def __init__(self, channel: Channel):
        self.channel = channel
        self.kind = channel.kind

    # --- settings ----------------------------------------------------------------------
    def configuration_problems(self) -> list[ConfigProblem]:
        secrets = self.channel.secrets or {}
        problems = []
        if not account_id(self.channel):
            label = (
                "Instagram account ID"
                if self.kind == Channel.Kind.INSTAGRAM
                else "Facebook page ID"
            )
            problems.append(ConfigProblem(f"{label} is not set: Meta's webhooks are not matched"))
        if not secrets.get("page_access_token"):
            problems.append(ConfigProblem("Page access token is not set: nothing can be sent"))
        if not secrets.get("app_secret"):
            problems.append(
                ConfigProblem("App secret is not set: Meta's webhooks are refused", False)
            )
        if not secrets.get("verify_token"):
            problems.append(
                ConfigProblem("Webhook verify token is not set: Meta cannot subscribe", False)
            )
        return problems

    def reply_options(self, conversation: Conversation | None) -> ReplyOptions:
        problem = window_problem(self.channel, conversation) if conversation else ""
        return ReplyOptions("notes", problem) if problem else ReplyOptions()

    # --- sending -----------------------------------------------------------------------
    def send(self, message: Message) -> SendResult:
        conversation = message.conversation
        problem = window_problem(self.channel, conversation)
        if problem:
            raise PermanentDeliveryError(problem)
        graph.page_token(self.channel)  # no token: permanent, before anything is sent
        options = messaging_options(self.channel, conversation)
        recipient = {"id": conversation.external_id}
        # Each part (an attachment each, then the text) is one Send API call; parts already
        # sent by an earlier attempt are not sent again.
        progress = dict(message.metadata.get("meta_parts") or {})
        parts = [("attachment", a) for a in message.attachments.all().order_by("id")]
        if message.content.strip():
            parts.append(("text", None))
        if not parts:
            raise PermanentDeliveryError("nothing to send: the message has no text or file")
        for index, (what, attachment) in enumerate(parts):
            key = str(index)
            if key in progress:
                continue
            if what == "text":
                mid = self._post_json(recipient, options, {"text": message.content}, message)
            else:
                mid = self._post_file(recipient, options, attachment, message)
            progress[key] = mid
            message.metadata["meta_parts"] = progress
            Message.objects.filter(pk=message.pk).update(metadata=message.metadata)
        mids = [progress[str(i)] for i in range(len(parts)) if progress.get(str(i))]
        return SendResult(external_id=mids[-1] if mids else None)

    def _tagged(self, body: dict, message: Message) -> dict:
        # Messenger echoes `metadata` back: the echo then names this message even if it
        # overtakes the Send API's answer. (Instagram's Send API takes no metadata.)
        if self.kind == Channel.Kind.MESSENGER:
            body = {**body, "metadata": f"{OUR_METADATA_PREFIX}{message.pk}"}
        return body

    def _post_json(self, recipient: dict, options: dict, body: dict, message: Message) -> str:
        payload = {"recipient": recipient, **options, "message": self._tagged(body, message)}
        return self._post(json=payload)

    def _post_file(self, recipient: dict, options: dict, attachment, message: Message) -> str:
        if self.kind == Channel.Kind.INSTAGRAM:
            return self._post_instagram_file(recipient, options, attachment)
        body = self._tagged(
            {
                "attachment": {
                    "type": attachment_type(attachment.mime_type),
                    "payload": {"is_reusable": False},
                }
            },
            message,
        )
        data = {"recipient": json.dumps(recipient), "message": json.dumps(body), **options}
        with attachment.file.open("rb") as handle:
            files = {
                "filedata": (
                    attachment.filename or "file",
                    handle,
                    attachment.mime_type or "application/octet-stream",
                )
            }
            return self._post(data=data, files=files)

    def _post_instagram_file(self, recipient: dict, options: dict, attachment) -> str:
        """Instagram takes files in two steps: upload to the page's `message_attachments`
        (platform instagram), then send the attachment id."""
        kind = attachment_type(attachment.mime_type)
        upload = {
            "platform": "instagram",
            "message": json.dumps(
                {"attachment": {"type": kind, "payload": {"is_reusable": False}}}
            ),
        }
        with attachment.file.open("rb") as handle:
            files = {
                "filedata": (
                    attachment.filename or "file",
                    handle,
                    attachment.mime_type or "application/octet-stream",
                )
            }
            answer = self._call("me/message_attachments", data=upload, files=files)
        attachment_id = answer.get("attachment_id")
        if not attachment_id:
            raise PermanentDeliveryError("Instagram took the file but named no attachment id")
        body = {"attachment": {"type": kind, "payload": {"attachment_id": str(attachment_id)}}}
        return self._post(json={"recipient": recipient, **options, "message": body})

    def _post(self, **kwargs) -> str:
        return str(self._call("me/messages", **kwargs).get("message_id") or "")

    def _call(self, path: str, **kwargs) -> dict:
        try:
            response = requests.post(
                f"{graph.graph_base()}/{path}",
                headers=graph.auth_headers(self.channel),
                timeout=graph.timeout(),
                **kwargs,
            )
        except requests.RequestException as exc:
            raise request_failure(exc, graph.platform_name(self.channel)) from exc
        if response.status_code >= 400:
            raise graph.graph_error(self.channel, response)
        try:
            answer = response.json()
        except ValueError:
            # Accepted all the same: failing it would invite a duplicate on retry.
            return {}
        return answer if isinstance(answer, dict) else {}

    # --- optional hooks ------------------------------------------------------------------
    def check_connection(self) -> str:
        answer = graph.get(self.channel, "me", {"fields": "id,name"})
        name = answer.get("name") or answer.get("username") or "?"
        return f"Connected to {graph.platform_name(self.channel)} as {name} (id {answer.get('id')})"

    def fetch_profile(self, identity: ContactIdentity) -> Profile | None:
        fields = (
            "name,username,profile_pic"
            if self.kind == Channel.Kind.INSTAGRAM
            else "first_name,last_name,profile_pic"
        )
        try:
            answer = graph.get(self.channel, identity.external_id, {"fields": fields})
        except TemporaryDeliveryError:
            raise
        except DeliveryError as exc:
            # No profile access for this person (privacy, a blocked page): nothing to say.
            logger.info("no profile for %s: %s", identity.external_id, exc.reason)
            return None
        name = answer.get("name") or " ".join(
            p for p in (answer.get("first_name"), answer.get("last_name")) if p
        )
        avatar, content_type = None, ""
        if answer.get("profile_pic"):
            try:
                avatar, content_type = download(answer["profile_pic"])
            except MediaFetchError as exc:
                logger.info("profile picture of %s not fetched: %s", identity.external_id, exc)
        if not (name or answer.get("username") or avatar):
            return None
        return Profile(
            name=name,
            username=answer.get("username") or "",
            avatar=avatar,
            avatar_content_type=content_type or ("image/jpeg" if avatar else ""),
        )
