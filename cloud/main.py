"""The cloud service's app factory: ``create_app(settings)`` → a FastAPI app whose lifespan opens
the result store, loads the task models and starts one batcher per task.

Run it with ``python -m cloud`` (docs/cloud.md); tests build it with their own settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cloud.analysis import Analyzer
from cloud.api.routes import analyze, health, results
from cloud.batcher import Arrivals, Batcher
from cloud.core.config import CloudSettings
from cloud.errors import install_error_handlers
from cloud.metrics import CloudMetrics
from cloud.models import load_models
from cloud.state import CloudState
from cloud.store import ResultStore
from shared.codecs import codec_names
from shared.runtime import apply_runtime, runtime_settings

log = logging.getLogger("cloud")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: CloudSettings = app.state.settings
    metrics: CloudMetrics = app.state.metrics
    # thread counts (torch for the task models, x265/decoders) from the one owner, before any model
    # loads, so this process and the edge on the same host do not each size their pools to every core
    runtime = apply_runtime(runtime_settings())
    async with contextlib.AsyncExitStack() as stack:  # whatever started is stopped, in reverse
        store = ResultStore(settings.database_url())
        stack.callback(store.close)
        await asyncio.to_thread(store.create_schema)
        models = await asyncio.to_thread(load_models, settings)

        def on_batch(size: int, seconds: float) -> None:
            metrics.batch_size.observe(size)
            metrics.stage("inference", seconds)

        arrivals = Arrivals()  # requests on their way to the batchers: none → a batch need not wait
        batchers: dict[str, Batcher] = {}
        for name, model in models.items():
            batchers[name] = b = Batcher(model, settings.MAX_BATCH, settings.MAX_DELAY_MS / 1000, on_batch, arrivals)
            b.start()
            stack.push_async_callback(b.close)
        analyzer = Analyzer(settings, metrics, store, batchers, arrivals)
        app.state.cloud = CloudState(settings, metrics, store, batchers, analyzer)
        stack.callback(delattr, app.state, "cloud")
        log.info("tasks %s on %s, batches of ≤ %d within %g ms, store %s, torch threads %s", ",".join(batchers),
                 settings.DEVICE, settings.MAX_BATCH, settings.MAX_DELAY_MS, store.url,
                 runtime.torch_threads or "torch's default")
        yield


def create_app(settings: CloudSettings | None = None) -> FastAPI:
    """The cloud app; ``settings`` default to the environment's (``PREPICM_CLOUD_*``)."""
    settings = settings or CloudSettings()
    app = FastAPI(title="PrepICM cloud", version="0.1.0", lifespan=lifespan,
                  description="Edges POST standard bitstreams; the cloud decodes them, runs the task models "
                              "in dynamic batches and stores one result per (camera, frame) (docs/cloud.md).")
    app.state.settings = settings
    app.state.metrics = CloudMetrics(codecs=tuple(codec_names()))
    install_error_handlers(app)
    app.include_router(analyze.router)
    app.include_router(results.router)
    app.include_router(health.router)
    return app
