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

from __future__ import annotations

import lazy_loader

# Names load on first use (PEP 562, through lazy_loader) so that importing one light
# module of the package (settings, convert, squad) does not load torch or FAISS.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "app": ["create_app"],
        "server": ["serve"],
        "keys": ["KeyStore", "ROLES"],
    },
)
