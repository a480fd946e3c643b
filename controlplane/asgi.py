"""ASGI entry point: HTTP through Django, websockets through Channels (/ws/...)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from controlplane import accesslog  # noqa: E402

accesslog.install()  # daphne's access lines: no token in a query string (controlplane/accesslog.py)

from controlplane.ws import unknown_websocket_path, websocket_urlpatterns  # noqa: E402
from tenants.ws_auth import WebsocketAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns + unknown_websocket_path)),
    }
)
