"""`etk serve`: an HTTP server (FastAPI on uvicorn) around one `Predictor`, with greedy request batching.

Modules: `settings` (options, passed to worker processes through the environment), `schemas` (request and
response models), `batcher` (the one task per process that owns inference), `metrics` (Prometheus),
`middleware` (request metrics, Host allow-list, API key, the body: content type, size, read timeout),
`responses` (JSON errors), `protocol` (uvicorn's HTTP parser with a header size limit), `app` (the FastAPI
app) and `server` (uvicorn, workers, graceful shutdown, workers that outlive their supervisor).
"""

from __future__ import annotations
