"""Ops: show or set the Matrix settings without the admin.

    manage.py matrix_settings --homeserver-url http://synapse:8008 --server-name example.com \
        --auth-mode appservice --registration /data/switchboard-registration.yaml \
        --whatsapp-mode matrix
    manage.py matrix_settings            # show (secrets masked)
"""

import yaml
from django.core.management.base import BaseCommand, CommandError

from integrations.matrix.models import MatrixSettings

SECRET_OPTIONS = ("registration_shared_secret", "as_token", "hs_token", "provisioning_secret")


class Command(BaseCommand):
    help = "Show or set the Matrix homeserver settings (secrets are stored encrypted)."

    def add_arguments(self, parser):
        parser.add_argument("--homeserver-url")
        parser.add_argument("--server-name")
        parser.add_argument("--auth-mode", choices=[c for c, _ in MatrixSettings.AuthMode.choices])
        parser.add_argument("--bridge-bot")
        parser.add_argument(
            "--whatsapp-mode", choices=[c for c, _ in MatrixSettings.WhatsAppMode.choices]
        )
        parser.add_argument("--appservice-id")
        for name in SECRET_OPTIONS:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name)
        parser.add_argument(
            "--registration",
            help="appservice registration YAML: takes id, as_token and hs_token from it",
        )

    def handle(self, *args, **options):
        row, _ = MatrixSettings.objects.get_or_create(pk=1)
        changed = False
        for option, field in (
            ("homeserver_url", "homeserver_url"),
            ("server_name", "server_name"),
            ("auth_mode", "auth_mode"),
            ("bridge_bot", "bridge_bot_user_id"),
            ("whatsapp_mode", "whatsapp_mode"),
            ("appservice_id", "appservice_id"),
        ):
            if options[option] is not None:
                setattr(row, field, options[option])
                changed = True
        secrets = dict(row.secrets)
        if options["registration"]:
            try:
                with open(options["registration"]) as handle:
                    registration = yaml.safe_load(handle)
            except OSError as exc:
                raise CommandError(f"cannot read {options['registration']}: {exc}") from exc
            for key in ("as_token", "hs_token"):
                if not registration.get(key):
                    raise CommandError(f"{options['registration']} has no {key}")
                secrets[key] = registration[key]
            row.appservice_id = registration.get("id") or row.appservice_id
            changed = True
        for name in SECRET_OPTIONS:
            if options[name] is not None:
                secrets[name] = options[name]
                changed = True
        if changed:
            row.secrets = secrets
            row.save()
            self.stdout.write(self.style.SUCCESS("Matrix settings saved."))
        self._show(row)

    def _show(self, row: MatrixSettings) -> None:
        self.stdout.write(f"whatsapp_mode:   {row.whatsapp_mode or '(env default)'}")
        self.stdout.write(f"homeserver_url:  {row.homeserver_url}")
        self.stdout.write(f"server_name:     {row.server_name}")
        self.stdout.write(f"auth_mode:       {row.auth_mode}")
        self.stdout.write(f"bridge_bot:      {row.bridge_bot_user_id or '(default)'}")
        self.stdout.write(f"appservice_id:   {row.appservice_id}")
        for name in SECRET_OPTIONS:
            self.stdout.write(f"{name + ':':<17}{'set' if row.secrets.get(name) else 'not set'}")
