"""Telegram through the Bot API: one bot per channel.

Webhook: `/webhooks/telegram/<channel_id>/` (`webhook.py`), authenticated by the secret that
`setup.set_webhook` generated and gave Telegram (`manage.py telegram_set_webhook`, or the
channel's admin action). Outbound: `TelegramProvider` (`provider.py`), registered by
`integrations.registry`. The Bot API's address is `settings.TELEGRAM_API_BASE`.
"""
