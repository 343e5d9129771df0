"""The REST API of DocQA (``docqa serve``): FastAPI on uvicorn (or on Ray Serve) over the same
core as the page and the CLI.

Public surface: :func:`api.app.create_app` (the app factory), :func:`api.server.serve` (run it,
one or several workers, or replicas on Ray Serve), :class:`api.keys.KeyStore` and
:data:`api.keys.ROLES` (API keys). Modules: ``app``, ``server``, ``ray_serve`` (the Ray Serve
engine), ``keys``, ``auth`` (the key check, before any body is read), ``deps`` (context, role
checks, scopes), ``errors``, ``limits`` (sizes, rates), ``metrics``,
``schemas`` and ``routes/``. Nothing is imported here, so ``docqa keys`` does not
load FastAPI and ``docqa serve`` chooses the metrics mode before prometheus_client loads.
"""

__all__ = ["ROLES", "KeyStore", "create_app", "serve"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from api.app import create_app

        return create_app
    if name == "serve":
        from api.server import serve

        return serve
    if name in ("KeyStore", "ROLES"):
        from api import keys

        return getattr(keys, name)
    raise AttributeError(f"module 'api' has no attribute {name!r}")
