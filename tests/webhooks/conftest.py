from tests.whatsapp_cloud.conftest import graph, wa_channel  # noqa: F401 - fixtures
