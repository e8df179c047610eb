"""The evaluation metrics by stable name: what each measures and which direction is better.

CLIs (``prepicm bdrate --metrics``), reports and the sweep read names from :data:`EVAL_METRICS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.registry import Registry


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str  # axis label
    higher_is_better: bool
    kinds: tuple[str, ...]  # task kinds it applies to ("any" = every kind)
    ground_truth: tuple[str, ...]  # dataset ground truths it needs ("any" = none needed)
    description: str

    def applies(self, kind: str, ground_truth: str) -> bool:
        return ("any" in self.kinds or kind in self.kinds) and (
            "any" in self.ground_truth or ground_truth in self.ground_truth
        )


EVAL_METRICS: Registry[MetricInfo] = Registry("evaluation metric")

for _m in (
    MetricInfo("top1", "top-1 accuracy", True, ("classification",), ("labels",),
               "fraction of images whose highest-probability class is the label"),
    MetricInfo("top5", "top-5 accuracy", True, ("classification",), ("labels",),
               "fraction of images whose label is among the 5 highest-probability classes"),
    MetricInfo("ce", "cross-entropy with labels (nats)", False, ("classification",), ("labels",),
               "mean −ln p[label] (continuous task distortion)"),
    MetricInfo("kl", "KL from pristine prediction (nats)", False, ("classification",), ("any",),
               "mean KL(p_pristine ‖ p_decoded) (continuous task distortion, no labels needed)"),
    MetricInfo("agreement", "top-1 agreement with pristine (pseudo GT)", True, ("classification",), ("any",),
               "fraction of images whose top-1 class equals the top-1 on the pristine image"),
    MetricInfo("map", "COCO mAP@[.5:.95]", True, ("detection",), ("coco",),
               "pycocotools COCOeval bbox AP averaged over IoU 0.50:0.95"),
    MetricInfo("ap50", "COCO AP50", True, ("detection",), ("coco",), "pycocotools COCOeval bbox AP at IoU 0.5"),
    MetricInfo("ap75", "COCO AP75", True, ("detection",), ("coco",), "pycocotools COCOeval bbox AP at IoU 0.75"),
    MetricInfo("f1", "F1 vs pristine detections (pseudo GT)", True, ("detection", "faces"), ("any",),
               "micro F1 of detections (score ≥ 0.25) matched to pristine ones (same class, IoU ≥ 0.5)"),
    MetricInfo("det_distortion", "detection soft-F distortion vs pristine", False, ("detection", "faces"),
               ("any",), "1 − score-weighted soft F of matched boxes (score ≥ 0.05); continuous"),
    MetricInfo("psnr", "PSNR (dB, RGB)", True, ("any",), ("any",), "mean per-image RGB PSNR vs the original"),
    MetricInfo("msssim", "MS-SSIM (RGB)", True, ("any",), ("any",), "mean per-image MS-SSIM vs the original"),
):
    EVAL_METRICS.register(_m.name, _m)


def metrics_for(kind: str, ground_truth: str) -> list[str]:
    """Names of the metrics a sweep reports for a task kind on a dataset with this ground truth."""
    return [n for n in EVAL_METRICS.names() if EVAL_METRICS.get(n).applies(kind, ground_truth)]
