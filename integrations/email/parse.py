"""Raw RFC 5322 bytes → what Switchboard keeps of a mail (Python's `email`, modern policy).

Charsets and RFC 2047 encoded words are decoded by the standard library's `policy.default`;
a part whose charset Python does not know is decoded as UTF-8 with replacement characters
rather than dropped. HTML is sanitised with nh3 before it is stored: nothing that can run
(scripts, styles, event handlers) survives, so the inbox never renders customer markup as is.
"""

import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

import nh3

from communications.services.ingest import InboundAttachment

MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
# Kept small in realtime events and message rows; the text body is always complete.
MAX_STORED_HTML = 200_000
MAX_REFERENCES = 50

# What HTML mail may keep: nh3's safe defaults (no script/style/on*) plus layout attributes
# mail clients rely on. Image sources are checked by nh3, then moved aside (see `block_remote_images`).
HTML_ATTRIBUTES = {
    "*": {"align", "valign", "width", "height", "colspan", "rowspan", "dir"},
    "img": {"alt", "src", "width", "height"},
    "a": {"href", "title"},
}


# Links and images may point only here; `cid:` names an inline image of the same mail.
URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


@dataclass
class ParsedMail:
    message_id: str
    subject: str
    sender_name: str
    sender_address: str
    to: list[dict] = field(default_factory=list)
    cc: list[dict] = field(default_factory=list)
    reply_to: str = ""
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    date: datetime | None = None
    text: str = ""
    html: str = ""  # sanitised, remote images blocked
    attachments: list[InboundAttachment] = field(default_factory=list)
    inline_images: dict[str, str] = field(default_factory=dict)  # Content-ID → filename

    @property
    def thread_ids(self) -> list[str]:
        """The ids this mail answers, nearest first: In-Reply-To, then References backwards."""
        seen, ordered = set(), []
        for mid in [*self.in_reply_to, *reversed(self.references)]:
            if mid not in seen and mid != self.message_id:
                seen.add(mid)
                ordered.append(mid)
        return ordered

    def metadata(self) -> dict:
        email = {
            "message_id": self.message_id,
            "subject": self.subject,
            "from": {"name": self.sender_name, "address": self.sender_address},
            "to": self.to,
            "cc": self.cc,
            "in_reply_to": self.in_reply_to[:1],
            "references": self.references[-MAX_REFERENCES:],
        }
        if self.reply_to and self.reply_to != self.sender_address:
            email["reply_to"] = self.reply_to
        if self.html:
            if len(self.html) <= MAX_STORED_HTML:
                email["html"] = self.html
            else:
                email["html_truncated"] = True
        if self.inline_images:
            email["inline_images"] = self.inline_images
        return {"email": email}


def parse_mail(raw: bytes) -> ParsedMail:
    msg = message_from_bytes(raw, policy=policy.default)
    # The modern policy parses a header again on every access, which made header parsing most
    # of an import's time: ids and the date are read raw (they need no decoding), and a
    # single-part mail's body is found from one look at its Content-Type.
    raw_headers: dict[str, str] = {}
    for name, value in msg.raw_items():
        raw_headers.setdefault(name.lower(), str(value))
    sender_name, sender_address = _first_address(msg, "from")
    _, reply_to = _first_address(msg, "reply-to") if "reply-to" in raw_headers else ("", "")
    text_part, html_part = _body_parts(msg)
    html_body = _content(html_part) if html_part is not None else ""
    text = _content(text_part) if text_part is not None else html_to_text(html_body)
    if msg.is_multipart() or (text_part is None and html_part is None):
        attachments, inline = _attachments(msg, {id(text_part), id(html_part)})
    else:
        attachments, inline = [], {}
    own_ids = _message_ids(raw_headers.get("message-id", ""))
    return ParsedMail(
        message_id=own_ids[0] if own_ids else _synthetic_id(raw),
        subject=_header(msg, "subject").strip(),
        sender_name=sender_name,
        sender_address=sender_address,
        to=_addresses(msg, "to") if "to" in raw_headers else [],
        cc=_addresses(msg, "cc") if "cc" in raw_headers else [],
        reply_to=reply_to,
        in_reply_to=_message_ids(raw_headers.get("in-reply-to", "")),
        references=_message_ids(raw_headers.get("references", "")),
        date=_date(" ".join(raw_headers.get("date", "").split())),
        text=text.strip(),
        html=sanitise_html(html_body) if html_body else "",
        attachments=attachments,
        inline_images=inline,
    )


def sanitise_html(markup: str) -> str:
    return block_remote_images(
        nh3.clean(markup, attributes=HTML_ATTRIBUTES, url_schemes=URL_SCHEMES)
    )


_IMG_SRC = re.compile(r"<img\b([^>]*?)\bsrc=(\"[^\"]*\"|'[^']*')", re.IGNORECASE)


def block_remote_images(markup: str) -> str:
    """`src` → `data-src`: the browser loads no remote image (a tracking pixel tells the sender
    the mail was read) until the manager asks for images and the page moves it back."""
    return _IMG_SRC.sub(r"<img\1data-src=\2", markup)


def html_to_text(markup: str) -> str:
    if not markup:
        return ""
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</h\d>|</li>", "\n", markup)
    text = html_lib.unescape(nh3.clean(markup, tags=set()))
    return re.sub(r"\n\s*\n\s*\n+", "\n\n", re.sub(r"[ \t\r\f\v]+", " ", text)).strip()


# -- headers -------------------------------------------------------------------------------
def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # a header the parser cannot make sense of
        value = msg.get_all(name, failobj=[None])[0] if hasattr(msg, "get_all") else None
    return str(value) if value is not None else ""


def _message_ids(value: str) -> list[str]:
    ids = MESSAGE_ID.findall(value)
    if not ids and value.strip() and " " not in value.strip():
        ids = [value.strip().strip("<>")]
    return [mid[:250] for mid in ids]


def _synthetic_id(raw: bytes) -> str:
    """A mail without a Message-ID still needs one stable id for dedup: its bytes'."""
    return f"{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.switchboard"


def _first_address(msg: EmailMessage, name: str) -> tuple[str, str]:
    found = _addresses(msg, name)
    if not found:
        return "", ""
    return found[0]["name"], found[0]["address"]


def _addresses(msg: EmailMessage, name: str) -> list[dict]:
    try:
        header = msg.get(name)
        addresses = [(a.display_name, a.addr_spec) for a in header.addresses] if header else []
    except (ValueError, IndexError, TypeError, AttributeError):
        addresses = getaddresses([str(v) for v in msg.get_all(name, [])])
    return [
        {"name": display.strip(), "address": address.strip().lower()}
        for display, address in addresses
        if address and "@" in address
    ]


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else None


# -- bodies and attachments ----------------------------------------------------------------
def _body_parts(msg: EmailMessage):
    """(text/plain part, text/html part), either None."""
    if not msg.is_multipart():
        content_type = msg.get_content_type()
        if msg.get_content_disposition() == "attachment":
            return None, None
        return (
            msg if content_type == "text/plain" else None,
            msg if content_type == "text/html" else None,
        )
    return _body_part(msg, "plain"), _body_part(msg, "html")


def _body_part(msg: EmailMessage, subtype: str):
    try:
        return msg.get_body(preferencelist=(subtype,))
    except (KeyError, LookupError):
        return None


def _content(part) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeDecodeError, AssertionError):
        content = None
    if isinstance(content, str):
        return content
    payload = part.get_payload(decode=True) or b""
    return payload.decode("utf-8", errors="replace")


def _attachments(msg: EmailMessage, body_parts: set[int]):
    attachments: list[InboundAttachment] = []
    inline: dict[str, str] = {}
    for index, part in enumerate(msg.walk()):
        if part.is_multipart() or id(part) in body_parts:
            continue
        disposition = part.get_content_disposition()
        filename = part.get_filename() or ""
        content_type = part.get_content_type()
        if disposition is None and not filename and content_type.startswith("text/"):
            continue  # an alternative body we did not pick
        data = part.get_payload(decode=True) or b""
        if not filename:
            extension = content_type.split("/")[-1].split("+")[0][:10]
            filename = f"part-{index}.{extension}"
        content_id = (part.get("content-id") or "").strip().strip("<>")
        if content_id:
            inline[content_id] = filename
        attachments.append(
            InboundAttachment(mime_type=content_type, filename=filename[:200], data=data)
        )
    return attachments, inline
