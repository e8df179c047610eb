"""Rate–accuracy evaluation: image metrics, task metrics, BD-rate with paired bootstrap, sweeps,
reports and the `prepicm eval | bdrate | plot` commands.

Modules: ``image_metrics`` (PSNR, MS-SSIM), ``metrics`` (top-k, CE, KL, COCO AP, pseudo-GT F1 and
detection distortion), ``bdrate`` (BD-rate, bootstrap), ``sweep`` (dataset × task × codec ×
quality × preprocessing), ``cache`` (encoded-file cache), ``preprocess`` (pluggable preprocessors),
``results`` / ``report`` (reading results back, tables, plots), ``cli``.
Submodules are imported on demand so that importing this package stays light.
"""
