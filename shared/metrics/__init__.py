"""Metrics the evaluation, the cloud and training share, each defined once.

``rate`` (bits per pixel), ``image`` (PSNR and its aggregation, MS-SSIM), ``classification``
(top-k, cross-entropy, KL from pristine, agreement), ``detection`` (matching against pristine
detections, pseudo-GT F1, soft detection distortion), ``coco`` (COCO box AP with pycocotools,
and its per-image form for bootstraps). Submodules are imported on demand.
"""
