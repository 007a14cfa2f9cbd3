"""Gunicorn settings read from the working directory (``gunicorn wsgi:app`` run from the repository).

Each worker warms the matching caches in the background as it starts (``app.warmup``), so its first
search or match does not load the keyword index, the vector matrix or the embedding model itself.
"""

import os
from typing import Any

# Production signs sessions, CSRF tokens and email links with the key from the environment only: without
# one, each worker host would make its own key into instance/ (see SECURITY.md).
if not os.environ.get("SECRET_KEY"):
    raise SystemExit("SECRET_KEY is not set: gunicorn serves production, which takes it from the environment")

# One sync worker per core: a worker's model inference and vector products use one thread each, so
# concurrent requests do not oversubscribe the cores (a profile embedding at load 5 on 2 cores:
# 96 ms median with one thread, 191 ms with two). An operator's own setting wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# One sync worker per core, at least two so one slow request never stalls the site; ``-w`` or
# ``WEB_CONCURRENCY`` override it.
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, os.cpu_count() or 1))

# A request that needs the embedding model while the worker is still warming up waits for it; on a
# busy 2-core machine loading torch and the model took over 30 s (gunicorn's default), and gunicorn
# then killed the worker mid-request, answering 500. Hung workers are still killed, later.
timeout = 120


def post_worker_init(worker: Any) -> None:
    from app.warmup import warm_in_background

    warm_in_background(worker.wsgi)
