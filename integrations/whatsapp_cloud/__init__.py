"""WhatsApp through Meta's Cloud API: the `classical` side of the WhatsApp mode switch (R6).

Webhook: `/webhooks/whatsapp/<channel_id>/` (GET verification, POST signed deliveries).
Outbound: `CloudApiProvider`, registered by `integrations.registry.register_providers()` (WhatsApp mode "classical").
"""
