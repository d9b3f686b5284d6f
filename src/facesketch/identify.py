"""Identification: does a generated image retrieve its own identity? (the report's Fig. 1 use case)

Descriptor (training-free, nothing downloaded): greyscale, resized to 64x64, projected on the
top principal components of the TRAINING split's targets (up to 50), then L2-normalised. Each
generated test image (identity view) is a probe; the gallery is every real test target of the
same kind (photos for sketch2photo, sketches for photo2sketch); cosine similarity ranks it.
Rank-k accuracy is the share of probes whose own identity is among the k nearest; chance is k/n.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIZE = 64
MAX_COMPONENTS = 50


def _grey_small(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) float [0, 1] -> (N, 64*64) greyscale."""
    out = []
    for im in images:
        g = im.mean(-1) if im.shape[-1] == 3 else im[..., 0]
        out.append(np.asarray(Image.fromarray(g.astype(np.float32)).resize((SIZE, SIZE), Image.BILINEAR)).ravel())
    return np.stack(out).astype(np.float64)


class PCADescriptor:
    def __init__(self, train_images: np.ndarray):
        x = _grey_small(train_images)
        self.mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.components = vt[: max(1, min(MAX_COMPONENTS, len(x) - 1))]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        z = (_grey_small(images) - self.mean) @ self.components.T
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def identification(descriptor: PCADescriptor, probes: np.ndarray, gallery: np.ndarray, ks=(1, 5)) -> dict:
    """probes[i] and gallery[i] share identity i. Returns rank-k accuracy and chance per k."""
    n = len(gallery)
    sim = descriptor(probes) @ descriptor(gallery).T
    order = np.argsort(-sim, axis=1)
    ranks = np.array([int(np.where(order[i] == i)[0][0]) for i in range(n)])
    out = {"n": n, "descriptor": f"PCA({descriptor.components.shape[0]}) of 64x64 greyscale, fit on train targets"}
    for k in ks:
        out[f"rank{k}"] = float(np.mean(ranks < k))
        out[f"chance_rank{k}"] = min(1.0, k / n)
    return out
