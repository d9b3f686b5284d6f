"""Metrics against hand-computed cases, independent SSIM implementations and the spec's
independently measured baseline values."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, uniform_filter
from skimage.metrics import structural_similarity

from facesketch.metrics import average, image_metrics


def _ssim_reference(x, y, *, L, gaussian):
    """SSIM written out from Wang et al. 2004, per channel, mean over the valid interior."""
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    vals = []
    for ch in range(x.shape[-1]):
        a, b = x[..., ch], y[..., ch]
        if gaussian:
            f = lambda z: gaussian_filter(z, 1.5, truncate=3.5)
            cov_norm, pad = 1.0, 5
        else:
            f = lambda z: uniform_filter(z, 7)
            cov_norm, pad = 49 / 48, 3
        ma, mb = f(a), f(b)
        va = cov_norm * (f(a * a) - ma * ma)
        vb = cov_norm * (f(b * b) - mb * mb)
        cab = cov_norm * (f(a * b) - ma * mb)
        s = ((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
        vals.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(vals))


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    tgt = gaussian_filter(rng.random((48, 40, 3)), (2, 2, 0))
    pred = np.clip(tgt + 0.1 * rng.standard_normal(tgt.shape), 0, 1)
    return pred, tgt


def test_ssim_paper_is_skimage_with_range_2(images):
    pred, tgt = images
    m = image_metrics(pred, tgt, sketch=False)
    assert abs(m["ssim_paper"] - structural_similarity(tgt, pred, data_range=2.0, channel_axis=-1)) < 1e-6
    assert abs(m["ssim_paper"] - _ssim_reference(tgt, pred, L=2.0, gaussian=False)) < 1e-6


def test_standard_ssim_gaussian_range_1(images):
    pred, tgt = images
    m = image_metrics(pred, tgt, sketch=False)
    assert abs(m["ssim"] - _ssim_reference(tgt, pred, L=1.0, gaussian=True)) < 1e-6
    # range 2 squeezes SSIM towards 1: the paper value is always the higher one here
    assert m["ssim_paper"] > m["ssim"]


def test_ssim_on_greyscale_for_sketches(images):
    pred, tgt = images
    luma = np.array([0.299, 0.587, 0.114])
    m = image_metrics(pred, tgt, sketch=True)
    assert abs(m["ssim"] - _ssim_reference((tgt @ luma)[..., None], (pred @ luma)[..., None], L=1.0,
                                           gaussian=True)) < 1e-6


def test_mae_median_is_the_median_not_the_mean():
    tgt = np.zeros((20, 20, 3))
    pred = tgt.copy()
    pred[:6] = 0.5  # 30% of values off by 0.5, the rest exact
    m = image_metrics(pred, tgt, sketch=False)
    assert m["mae_median"] == 0.0 and m["mae"] == pytest.approx(0.15)
    assert m["rmse"] == pytest.approx(np.sqrt(0.3 * 0.25))


def test_psnr_and_clipping():
    tgt = np.full((16, 16, 3), 0.5)
    m = image_metrics(tgt + 0.1, tgt, sketch=False)
    assert m["psnr"] == pytest.approx(20.0) and m["mae"] == pytest.approx(0.1)
    clipped = image_metrics(np.full((16, 16, 3), 3.0), np.ones((16, 16, 3)), sketch=False)
    assert clipped["mae"] == 0.0  # predictions are clipped to [0, 1] first
    assert average([{k: 1.0 for k in m}, {k: 3.0 for k in m}])["rmse"] == 2.0


# spec section 6: predictors that learned nothing, scored on the 104 paper test pairs
SPEC_BASELINES = {("photo2sketch", "mean"): (0.079, 0.191, 0.705), ("photo2sketch", "pencil"): (0.023, 0.207, 0.704),
                  ("photo2sketch", "grey"): (0.214, 0.258, 0.697), ("sketch2photo", "mean"): (0.084, 0.165, 0.767),
                  ("sketch2photo", "grey"): (0.177, 0.298, 0.667)}


@pytest.mark.parametrize("direction", ["photo2sketch", "sketch2photo"])
def test_baselines_reproduce_the_spec_values_on_cufs(cufs_dir, direction):
    from facesketch.data.dataset import PairDataset
    from facesketch.data.pairs import find_pairs
    from facesketch.data.protocols import make_split
    from facesketch.evaluate import predict_dataset
    from facesketch.registry import create_model
    split = make_split(find_pairs(cufs_dir).pairs, "paper")
    test = PairDataset(split.test, size=256, direction=direction, views=split.test_views)
    train = PairDataset(split.train, size=256, direction=direction, views=(0,))
    for (d, name), expected in SPEC_BASELINES.items():
        if d != direction:
            continue
        model = create_model(name).eval()
        model.fit((train.sketches if d == "photo2sketch" else train.photos).float() / 255)
        rows = [image_metrics(p.transpose(1, 2, 0), t.transpose(1, 2, 0), sketch=d == "photo2sketch")
                for _, t, p, _, _ in predict_dataset(model, test, name=name)]
        assert len(rows) == 104
        got = average(rows)
        for key, value in zip(("mae_median", "rmse", "ssim_paper"), expected):
            assert got[key] == pytest.approx(value, abs=0.0016), (d, name, key)
