"""A small Bot API client: `{TELEGRAM_API_BASE}/bot<token>/<method>` and file downloads.

Every answer is `{"ok": true, "result": …}` or `{"ok": false, "error_code": …, "description":
…, "parameters": {"retry_after": …}}` (core.telegram.org/bots/api#making-requests). Errors
become `BotApiError`, which says whether trying again later can help.
"""

import json

import requests
from django.conf import settings

from communications.models import Channel

from ..base import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError, request_failure

# Bots may download files of up to 20 MB (getFile).
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


class BotApiError(Exception):
    """Telegram refused the call. `temporary`: flood control (429) or a server error (5xx)."""

    def __init__(self, description: str, *, status: int, retry_after: float | None = None):
        super().__init__(description)
        self.description = description
        self.status = status
        self.retry_after = retry_after

    @property
    def temporary(self) -> bool:
        return self.status == 429 or self.status >= 500

    def as_delivery_error(self) -> DeliveryError:
        if self.temporary:
            return TemporaryDeliveryError(self.reason, retry_after=self.retry_after)
        return PermanentDeliveryError(self.reason)

    @property
    def reason(self) -> str:
        """In staff's words, with Telegram's own description."""
        if self.status == 401:
            return (
                f"Telegram refused the bot token ({self.description}): check it in admin → Channels"
            )
        return f"Telegram: {self.description}"


def api_base() -> str:
    return settings.TELEGRAM_API_BASE.rstrip("/")


def bot_token(channel: Channel) -> str:
    token = (channel.secrets or {}).get("bot_token", "")
    if not token:
        raise PermanentDeliveryError(
            "this Telegram channel has no bot token: an admin sets it in admin → Channels"
        )
    return token


class BotApi:
    def __init__(self, channel: Channel):
        self.token = bot_token(channel)
        self.timeout = settings.SWITCHBOARD["PROVIDER_HTTP_TIMEOUT"]

    def _url(self, method: str) -> str:
        return f"{api_base()}/bot{self.token}/{method}"

    def call(self, method: str, params: dict | None = None, *, files: dict | None = None):
        """The method's `result`. JSON body, or multipart form fields (`files`: an upload)."""
        if files:
            # Multipart fields are strings: nested parameters travel JSON-serialised.
            data = {
                key: json.dumps(value) if isinstance(value, dict | list) else str(value)
                for key, value in (params or {}).items()
            }
            response = requests.post(
                self._url(method), data=data, files=files, timeout=self.timeout
            )
        else:
            response = requests.post(self._url(method), json=params or {}, timeout=self.timeout)
        return _result(response)

    def download(self, file_path: str) -> bytes:
        """The bytes of a file named by getFile's `file_path`."""
        url = f"{api_base()}/file/bot{self.token}/{file_path}"
        with requests.get(url, timeout=self.timeout, stream=True) as response:
            if response.status_code != 200:
                raise BotApiError(
                    f"file download answered HTTP {response.status_code}",
                    status=response.status_code,
                )
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise BotApiError(
                        "the file is larger than the 20 MB bots may download", status=400
                    )
                chunks.append(chunk)
        return b"".join(chunks)

    def file_bytes(self, file_id: str) -> tuple[bytes, str]:
        """getFile, then the download: (bytes, file_path)."""
        info = self.call("getFile", {"file_id": file_id})
        file_path = info.get("file_path") if isinstance(info, dict) else None
        if not file_path:
            raise BotApiError(
                "getFile named no file_path (the file may be larger than 20 MB)", status=400
            )
        return self.download(file_path), file_path


def _result(response: requests.Response):
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        status = response.status_code if response.status_code >= 400 else 502
        raise BotApiError(f"HTTP {response.status_code}, not a Bot API answer", status=status)
    if answer.get("ok") is True and response.status_code < 400:
        return answer.get("result")
    status = answer.get("error_code") or response.status_code
    if not isinstance(status, int) or status < 400:
        status = response.status_code if response.status_code >= 400 else 400
    parameters = answer.get("parameters")
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    raise BotApiError(
        str(answer.get("description") or f"HTTP {response.status_code}"),
        status=status,
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
    )


def delivery_error(exc: Exception) -> DeliveryError:
    """A failed call, for the send path."""
    if isinstance(exc, BotApiError):
        return exc.as_delivery_error()
    if isinstance(exc, requests.RequestException):
        return request_failure(exc, "Telegram")
    raise exc
