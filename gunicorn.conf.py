"""Gunicorn settings read from the working directory (``gunicorn wsgi:app`` run from the repository).

Each worker warms the matching caches in the background as it starts (``app.warmup``), so its first
search or match does not load the keyword index, the vector matrix or the embedding model itself.
"""

from typing import Any


def post_worker_init(worker: Any) -> None:
    from app.warmup import warm_in_background

    warm_in_background(worker.wsgi)
