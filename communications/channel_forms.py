"""The admin's channel form, by kind: each kind shows only its own settings, as named fields.

What is stored does not change: named settings go into `Channel.config` (kept in clear, other
keys left as they are) and secrets into `Channel.secrets` (encrypted, write-only: a blank field
keeps the stored value). Kinds without named settings yet keep the raw `config` field.
"""

from dataclasses import dataclass, field

from django import forms

from .models import Channel


@dataclass(frozen=True)
class KindSettings:
    config: dict[str, forms.Field] = field(default_factory=dict)
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (label, purpose)
    note: str = ""
    # The URL segment of the kind's webhook (/webhooks/<source>/<id>/): the admin shows the
    # channel's full webhook URL, ready to paste into the platform's settings.
    webhook_source: str = ""
    # What staff do with that URL, when it is not simply pasted with the secrets above.
    webhook_note: str = ""


KIND_SETTINGS: dict[str, KindSettings] = {
    Channel.Kind.API: KindSettings(
        config={
            "callback_url": forms.URLField(
                label="Callback URL",
                required=False,
                assume_scheme="https",
                help_text="Where Switchboard POSTs the managers' replies (blank: replies are "
                "stored, not delivered).",
            ),
        },
        secrets={
            "inbound_token": (
                "Inbound token",
                "integrators send it as 'Authorization: Bearer …' with each inbound message",
            ),
            "callback_secret": ("Callback signing secret", "signs each callback (HMAC-SHA256)"),
        },
    ),
    Channel.Kind.WHATSAPP: KindSettings(
        config={
            "phone_number_id": forms.CharField(
                label="Phone number ID",
                required=False,
                max_length=64,
                help_text="From Meta's WhatsApp Manager → API setup. Needed to send and to "
                "receive through the WhatsApp Cloud API.",
            ),
            "business_account_id": forms.CharField(
                label="WhatsApp Business Account ID",
                required=False,
                max_length=64,
                help_text="From Meta's WhatsApp Manager → API setup. Needed to sync the "
                "message templates sent outside the 24-hour window.",
            ),
            "graph_api_base": forms.URLField(
                label="Graph API base URL",
                required=False,
                assume_scheme="https",
                help_text="Blank for Meta's default (https://graph.facebook.com/v21.0).",
            ),
        },
        secrets={
            "access_token": ("Access token", "the system user's token from Meta"),
            "app_secret": ("App secret", "signs Meta's webhooks to this channel"),
            "verify_token": (
                "Webhook verify token",
                "the verify token you typed in Meta's webhook settings",
            ),
        },
        note="These settings are for the WhatsApp Cloud API mode. In the Matrix mode the "
        "WhatsApp numbers are connected by the managers (Connect WhatsApp).",
        webhook_source="whatsapp",
    ),
    Channel.Kind.MESSENGER: KindSettings(
        config={
            "page_id": forms.CharField(
                label="Facebook page ID",
                required=False,
                max_length=64,
                help_text="The page's numeric ID (Meta Business Suite → page settings → About, "
                "or the App Dashboard's Messenger settings).",
            ),
            "human_agent": forms.BooleanField(
                label="Page has the Human Agent permission",
                required=False,
                help_text="Tick when Meta granted this app the Human Agent permission: replies "
                "are then allowed up to 7 days after the customer's last message (tagged "
                "HUMAN_AGENT) instead of 24 hours.",
            ),
        },
        secrets={
            "page_access_token": ("Page access token", "the page's access token from Meta"),
            "app_secret": ("App secret", "signs Meta's webhooks to this channel"),
            "verify_token": (
                "Webhook verify token",
                "any secret you choose; type the same in Meta's webhook settings",
            ),
        },
        note="Subscribe the page to: messages, message_echoes, message_deliveries, "
        "message_reads, message_reactions, messaging_postbacks (docs/meta.md).",
        webhook_source="meta",
    ),
    Channel.Kind.INSTAGRAM: KindSettings(
        config={
            "instagram_account_id": forms.CharField(
                label="Instagram account ID",
                required=False,
                max_length=64,
                help_text="The Instagram professional account's ID (IGID), as Meta's webhooks "
                "name it in entry.id.",
            ),
            "human_agent": forms.BooleanField(
                label="Account has the Human Agent permission",
                required=False,
                help_text="Tick when Meta granted this app the Human Agent permission: replies "
                "are then allowed up to 7 days after the customer's last message (tagged "
                "HUMAN_AGENT) instead of 24 hours.",
            ),
        },
        secrets={
            "page_access_token": (
                "Page access token",
                "the access token of the Facebook page linked to the Instagram account",
            ),
            "app_secret": ("App secret", "signs Meta's webhooks to this channel"),
            "verify_token": (
                "Webhook verify token",
                "any secret you choose; type the same in Meta's webhook settings",
            ),
        },
        note="Subscribe the Instagram webhook to: messages, messaging_seen, message_reactions, "
        "messaging_postbacks (docs/meta.md).",
        webhook_source="meta",
    ),
    Channel.Kind.TELEGRAM: KindSettings(
        secrets={
            "bot_token": (
                "Bot token",
                "the token @BotFather gave for the bot (123456789:AA…)",
            ),
        },
        webhook_source="telegram",
        webhook_note="Telegram is told this address, with a secret only it and Switchboard "
        "know, by the action “Set up the webhook at the platform” in the channel list (or "
        "manage.py telegram_set_webhook --channel ID --public-url https://your.host). "
        "Run it again after changing the bot token.",
    ),
}
NO_SETTINGS = KindSettings()


def settings_for(kind: str | None) -> KindSettings:
    return KIND_SETTINGS.get(kind or "", NO_SETTINGS)


class ChannelFormBase(forms.ModelForm):
    kind_settings: KindSettings = NO_SETTINGS

    class Meta:
        model = Channel
        fields = ["kind", "name", "teams", "is_active"]
        labels = {"is_active": "Active"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = (self.instance.config or {}) if self.instance.pk else {}
        stored = (self.instance.secrets or {}) if self.instance.pk else {}
        for key in self.kind_settings.config:
            if key in self.fields:
                default = False if isinstance(self.fields[key], forms.BooleanField) else ""
                self.fields[key].initial = config.get(key, default)
        for key, (_label, purpose) in self.kind_settings.secrets.items():
            if key in self.fields:
                state = "set: leave blank to keep it" if stored.get(key) else "not set"
                self.fields[key].help_text = f"{purpose[0].upper()}{purpose[1:]} ({state})."

    def save(self, commit=True):
        channel = super().save(commit=False)
        config = dict(channel.config or {})
        for key in self.kind_settings.config:
            if key not in self.cleaned_data:
                continue
            value = self.cleaned_data[key]
            if isinstance(value, bool):
                value = value or None  # a ticked box is stored as true, an unticked one not at all
            else:
                value = (value or "").strip()
            if value:
                config[key] = value
            else:
                config.pop(key, None)
        channel.config = config
        secrets = dict(channel.secrets or {})
        for key in self.kind_settings.secrets:
            if self.cleaned_data.get(key):
                secrets[key] = self.cleaned_data[key]
        channel.secrets = secrets
        if commit:
            channel.save()
            self.save_m2m()
        return channel


def channel_form_for(kind: str | None) -> type[ChannelFormBase]:
    """A form class with the named settings and write-only secrets of this kind."""
    settings = settings_for(kind)
    attrs: dict = {"kind_settings": settings}
    for key, config_field in settings.config.items():
        attrs[key] = config_field
    for key, (label, purpose) in settings.secrets.items():
        attrs[key] = forms.CharField(
            label=label,
            required=False,
            widget=forms.PasswordInput(render_value=False),
            help_text=purpose,
        )
    return type(f"ChannelForm_{kind or 'new'}", (ChannelFormBase,), attrs)


def fieldsets_for(kind: str | None, *, adding: bool) -> list:
    settings = settings_for(kind)
    main = ["kind", "name", "teams", "is_active"] if adding else ["name", "teams", "is_active"]
    fieldsets: list = [(None, {"fields": main})]
    if adding and not kind:
        return fieldsets  # the kind's own settings come once the kind is chosen
    if settings.config:
        fieldsets.append(
            ("Settings", {"fields": list(settings.config), "description": settings.note})
        )
    elif not settings.secrets:
        fieldsets.append(("Settings", {"fields": ["config"]}))
    if settings.secrets:
        fieldsets.append(("Secrets (write-only)", {"fields": list(settings.secrets)}))
    return fieldsets
