"""Facebook Messenger and Instagram Direct through Meta's Messenger Platform (Graph API).

Webhook: `/webhooks/meta/<channel_id>/` (GET verification, POST signed deliveries) for channels
of kind messenger and instagram. Outbound: `MetaProvider` (`POST {META_GRAPH_BASE}/me/messages`
with the page access token). Registered by `integrations.registry.register_providers()`.
Operator guide: docs/meta.md.
"""
