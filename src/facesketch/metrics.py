"""Image metrics, per image: the report's ("paper") metrics and standard ones, settings stated.

Paper metrics (spec section 3), on the prediction clipped to [0, 1] and the target, HxWx3:
  mae_median  the MEDIAN absolute pixel difference (the report's "MAE")
  rmse        sqrt of the mean squared difference
  ssim_paper  scikit-image SSIM as it behaved for floats before 0.19: data_range=2.0, 7x7 uniform
              window, sample covariance, per channel then averaged
Standard metrics:
  mae         mean absolute difference
  psnr        10 log10(1 / MSE), data range 1
  ssim        Gaussian window (sigma 1.5), population covariance, data range 1; for sketches
              (photo2sketch) on the greyscale image, for photos per RGB channel
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

PAPER_METRICS = ("mae_median", "rmse", "ssim_paper")
STANDARD_METRICS = ("mae", "rmse", "psnr", "ssim")
ALL_METRICS = ("mae_median", "rmse", "ssim_paper", "mae", "psnr", "ssim")
HIGHER_IS_BETTER = {"ssim_paper", "ssim", "psnr"}
SETTINGS = {
    "mae_median": "median |pred - tgt| over all HxWx3 values (the report's 'MAE')",
    "rmse": "sqrt(mean (pred - tgt)^2) over all HxWx3 values",
    "ssim_paper": "skimage SSIM, data_range=2.0, 7x7 uniform window, sample covariance, per channel",
    "mae": "mean |pred - tgt| over all values",
    "psnr": "10 log10(1 / MSE), data range 1",
    "ssim": "skimage SSIM, Gaussian sigma 1.5, population covariance, data_range=1; greyscale for sketches",
}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def image_metrics(pred: np.ndarray, tgt: np.ndarray, *, sketch: bool) -> dict[str, float]:
    """pred, tgt: HxWxC float in [0, 1] (pred is clipped here). sketch: target is a sketch."""
    if pred.shape != tgt.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match target shape {tgt.shape}")
    pred = np.clip(pred.astype(np.float64), 0.0, 1.0)
    tgt = tgt.astype(np.float64)
    diff = pred - tgt
    mse = float(np.mean(diff**2))
    out = {
        "mae_median": float(np.median(np.abs(diff))),
        "rmse": float(np.sqrt(mse)),
        "ssim_paper": float(structural_similarity(tgt, pred, data_range=2.0, channel_axis=-1)),
        "mae": float(np.mean(np.abs(diff))),
        "psnr": float(peak_signal_noise_ratio(tgt, pred, data_range=1.0)) if mse > 0 else float("inf"),
    }
    if sketch and pred.shape[-1] == 3:
        g_p, g_t = pred @ _LUMA, tgt @ _LUMA
        out["ssim"] = float(structural_similarity(g_t, g_p, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                                  use_sample_covariance=False))
    else:
        out["ssim"] = float(structural_similarity(tgt, pred, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                                  use_sample_covariance=False, channel_axis=-1))
    return out


def average(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over images (the report averages per-image values)."""
    return {k: float(np.mean([r[k] for r in rows])) for k in ALL_METRICS} if rows else {}
