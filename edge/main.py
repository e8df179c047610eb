"""The edge service's app factory: ``create_app(settings)`` → a FastAPI app whose lifespan loads
the NPP, starts the encoder pool, opens the spool, the cloud client and the delivery task.

Run it with ``python -m edge`` (docs/edge.md); tests build it with their own settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from edge.api.routes import encode, health
from edge.core.config import EdgeSettings
from edge.delivery import Delivery
from edge.encoding import Encoders
from edge.errors import install_error_handlers
from edge.metrics import EdgeMetrics
from edge.preprocessor import NppPreprocessor, load_npp_preprocessor
from edge.service import EdgeService
from edge.spool import Spool
from edge.state import EdgeState
from edge.uplink import CloudClient
from shared.codecs import codec_names
from shared.paths import cache_dir
from shared.runtime import apply_runtime, runtime_settings

log = logging.getLogger("edge")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: EdgeSettings = app.state.settings
    overrides: dict[str, object] = {"npp_backend": settings.NPP_BACKEND}
    if settings.ENCODE_WORKERS is not None:
        overrides["encode_workers"] = settings.ENCODE_WORKERS
    runtime = apply_runtime(runtime_settings(None, **overrides))
    metrics = EdgeMetrics(codecs=tuple(codec_names()))
    async with contextlib.AsyncExitStack() as stack:  # whatever started is stopped, in reverse
        spool = Spool(settings.SPOOL_DIR or cache_dir("edge", runtime) / "spool", settings.SPOOL_MAX_BYTES)
        stack.callback(spool.close)
        encoders = Encoders(runtime.encode_workers, runtime, settings.CODEC_OPTIONS)
        stack.push_async_callback(asyncio.to_thread, encoders.close)
        cloud = CloudClient(
            settings.CLOUD_URL, settings.CLOUD_TOKEN.get_secret_value() if settings.CLOUD_TOKEN else None,
            connect_timeout_s=settings.CONNECT_TIMEOUT_S, timeout_s=settings.UPLOAD_TIMEOUT_S,
            retries=settings.UPLOAD_RETRIES, backoff_s=settings.RETRY_BACKOFF_S,
            backoff_max_s=settings.DELIVERY_BACKOFF_MAX_S, on_retry=metrics.upload_retries.inc)
        stack.push_async_callback(cloud.aclose)
        npp: NppPreprocessor | None = None
        if settings.NPP_ARTIFACT is not None:
            loading = asyncio.to_thread(load_npp_preprocessor, settings.NPP_ARTIFACT, runtime)
            loaded, _ = await asyncio.gather(loading, encoders.warm_up(settings.CODEC))
            log.info("edge: NPP %s (%s)", loaded.preprocessor_id, loaded.backend.describe())
            npp = loaded
        else:
            await encoders.warm_up(settings.CODEC)
            log.info("edge: no NPP artifact configured: plain %s", settings.CODEC)
        delivery = Delivery(spool, cloud, metrics, backoff_s=max(settings.RETRY_BACKOFF_S, 0.01),
                            backoff_max_s=settings.DELIVERY_BACKOFF_MAX_S)
        service = EdgeService(settings, metrics, encoders, spool, cloud, delivery, npp)
        app.state.edge = EdgeState(settings, metrics, encoders, spool, cloud, delivery, service,
                                   None if npp is None else npp.backend.describe())
        delivery.sync_metrics()
        delivery.start()
        stack.push_async_callback(delivery.stop)
        log.info("edge: codec %s (options %s), %d encoder process(es), spool %s (%d frames waiting), cloud %s",
                 settings.CODEC, settings.codec_options(settings.CODEC), encoders.workers, spool.directory,
                 len(spool), settings.CLOUD_URL)
        yield


def create_app(settings: EdgeSettings | None = None) -> FastAPI:
    """The edge app; ``settings`` default to the environment's (``PREPICM_EDGE_*``)."""
    settings = settings or EdgeSettings()
    app = FastAPI(title="PrepICM edge", version="0.1.0", lifespan=lifespan,
                  description="Cameras POST frames; the edge runs the NPP and a standard codec and forwards "
                              "the bitstream to the cloud (docs/edge.md).")
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(encode.router)
    app.include_router(health.router)
    return app
