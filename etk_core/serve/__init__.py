"""`etk serve`: an HTTP server (FastAPI on uvicorn) around one `Predictor`, with greedy request batching.

Modules: `settings` (options, passed to worker processes through the environment), `schemas` (request and
response models), `batcher` (the one task per process that owns inference), `metrics` (Prometheus),
`middleware` (API key, body size, request metrics), `responses` (JSON errors), `app` (the FastAPI app)
and `server` (uvicorn, workers, graceful shutdown).
"""

from __future__ import annotations
