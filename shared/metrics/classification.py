"""Classification metrics on probabilities ``(N, C)`` (softmax outputs).

Cross-entropy with labels is ``−ln p[label]`` per image; KL from pristine is
``KL(p_pristine ‖ p_decoded) = Σ p_pristine · ln(p_pristine / p_decoded)`` per image, in nats.
Probabilities are clipped at :data:`PROB_FLOOR` so that a zero probability gives a large but
finite value. Top-1 agreement compares with the pristine top-1 class (no labels needed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROB_FLOOR = 1e-12


class MetricError(ValueError):
    """Inputs to a metric are inconsistent (shapes, labels, missing images)."""


def _probs2d(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2:
        raise MetricError(f"probabilities must be (N, C), got shape {p.shape}")
    return p


def _labels(labels: Sequence[int] | np.ndarray, n: int, c: int) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.shape[0] != n:
        raise MetricError(f"{y.shape[0]} labels for {n} predictions")
    if n and (y.min() < 0 or y.max() >= c):
        raise MetricError(f"labels must lie in 0..{c - 1}")
    return y


def topk_correct(probs: np.ndarray, labels: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Per image: is the label among the k highest-scoring classes? Ties count against the label
    (a class ranks above the label when its score is strictly higher, or equal with a lower index),
    which matches ``argsort``-based top-k of stable sorts."""
    p = _probs2d(probs)
    y = _labels(labels, p.shape[0], p.shape[1])
    label_score = p[np.arange(p.shape[0]), y][:, None]
    idx = np.arange(p.shape[1])[None, :]
    above = (p > label_score) | ((p == label_score) & (idx < y[:, None]))
    return np.asarray(above.sum(axis=1) < k)


def topk_accuracy(probs: np.ndarray, labels: Sequence[int] | np.ndarray, k: int = 1) -> float:
    c = topk_correct(probs, labels, k)
    return float(c.mean()) if c.size else float("nan")


def cross_entropy(probs: np.ndarray, labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per-image cross-entropy ``−ln p[label]`` (nats)."""
    p = _probs2d(probs)
    y = _labels(labels, p.shape[0], p.shape[1])
    return np.asarray(-np.log(np.maximum(p[np.arange(p.shape[0]), y], PROB_FLOOR)))


def kl_divergence(reference: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-image ``KL(reference ‖ probs)`` in nats (reference = the pristine prediction)."""
    r = _probs2d(reference)
    q = _probs2d(probs)
    if r.shape != q.shape:
        raise MetricError(f"reference {r.shape} and prediction {q.shape} differ in shape")
    rr = np.maximum(r, PROB_FLOOR)
    qq = np.maximum(q, PROB_FLOOR)
    # Terms with reference probability 0 contribute 0 (lim p·ln p = 0).
    terms = np.where(r > 0, r * (np.log(rr) - np.log(qq)), 0.0)
    return np.asarray(np.maximum(terms.sum(axis=1), 0.0))


def top1_agreement(reference: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per image: does the top-1 class equal the pristine top-1 class?"""
    r = _probs2d(reference)
    q = _probs2d(probs)
    if r.shape != q.shape:
        raise MetricError(f"reference {r.shape} and prediction {q.shape} differ in shape")
    return np.asarray(r.argmax(axis=1) == q.argmax(axis=1))
