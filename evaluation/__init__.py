"""The rate–accuracy evaluation application: sweeps, caches, BD-rate reports with paired bootstrap,
reports, the codec benchmark and the ``prepicm`` command.

Modules: ``config`` (what a sweep runs), ``plan`` → ``encode`` → ``score`` → ``summarise`` (the
sweep's stages, run by ``sweep``), ``keys`` and ``cache`` (what every cached value is keyed by),
``preprocessors`` (``--preprocess`` specs, exported NPPs through ``edge``), ``results`` /
``report`` (reading results back, tables, plots, BD-rates), ``bench`` (codec
rate–distortion), ``registry`` (metric names), ``cli``. Metrics the services and training share
(BD-rate and its paired bootstrap included) live in :mod:`shared.metrics`; the encode pipeline
in :mod:`shared.pipeline`.
"""
