import numpy as np
import torch

from facesketch.data.augment import apply_view, invert_view
from facesketch.data.dataset import PairDataset, make_loader
from facesketch.data.pairs import find_pairs


def test_eight_views_are_distinct_and_invertible():
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 5, 5)
    views = [apply_view(x, v) for v in range(8)]
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    for v in range(8):
        assert torch.equal(invert_view(apply_view(x, v), v), x)
    # 4 is clockwise: the top-left corner goes to the top-right
    assert apply_view(x, 4)[0, 0, -1] == x[0, 0, 0]
    assert apply_view(x, 5)[0, -1, 0] == x[0, 0, 0]


def test_pair_gets_the_same_view(synth_dir):
    pairs = find_pairs(synth_dir).pairs[:2]
    # the same image as photo and sketch: any mismatch in views would show as a difference
    same = [type(p)(p.photo, p.photo) for p in pairs]
    ds = PairDataset(same, size=32, direction="photo2sketch", views=tuple(range(8)))
    assert len(ds) == 16
    for i in range(len(ds)):
        src, tgt, pair, view = ds[i]
        assert torch.equal(src, tgt) and src.shape == (3, 32, 32) and 0 <= src.min() and src.max() <= 1
    # pair-major, views inner: item 0 is pair 0 in view 0, item 9 pair 1 in view 1
    assert ds[0][2:] == (0, 0) and ds[9][2:] == (1, 1) and ds.pairs[1].stem == pairs[1].stem


def test_direction_swaps_src_and_tgt(synth_dir):
    pairs = find_pairs(synth_dir).pairs[:1]
    a = PairDataset(pairs, size=16, direction="photo2sketch")[0]
    b = PairDataset(pairs, size=16, direction="sketch2photo")[0]
    assert torch.equal(a[0], b[1]) and torch.equal(a[1], b[0])


def test_loader_order_depends_only_on_seed_and_epoch(synth_dir):
    ds = PairDataset(find_pairs(synth_dir).pairs, size=8, direction="photo2sketch", views=(0, 1))
    names = lambda seed, epoch: [(int(i), int(v)) for _, _, pair, view in make_loader(
        ds, batch_size=5, shuffle=True, seed=seed, epoch=epoch) for i, v in zip(pair, view)]
    assert names(1, 0) == names(1, 0)
    assert names(1, 0) != names(1, 1) and sorted(names(1, 0)) == sorted(names(1, 1))


def test_all_eight_views_match_numpy():
    # the order documented in data/augment.py and spec section 1, each written with NumPy's own
    # operations on the last two axes (np.rot90 with k=-1 turns clockwise, k=1 counter-clockwise)
    hw = (-2, -1)
    expected = [
        lambda a: a,
        lambda a: np.flip(a, -1),                                  # horizontal flip
        lambda a: np.flip(a, -2),                                  # vertical flip
        lambda a: np.rot90(a, 2, axes=hw),                         # rotation 180
        lambda a: np.rot90(a, -1, axes=hw),                        # 90 clockwise
        lambda a: np.rot90(a, 1, axes=hw),                         # 90 counter-clockwise
        lambda a: np.flip(np.rot90(a, -1, axes=hw), -1),           # 90 clockwise, then horizontal flip
        lambda a: np.flip(np.rot90(a, 1, axes=hw), -1),            # 90 counter-clockwise, then horizontal flip
    ]
    a = np.random.default_rng(0).random((2, 3, 6, 6)).astype(np.float32)
    for view, f in enumerate(expected):
        assert np.array_equal(apply_view(torch.from_numpy(a), view).numpy(), f(a)), view
    # clockwise, by hand on a 2x2: [[1, 2], [3, 4]] -> [[3, 1], [4, 2]]
    assert apply_view(torch.tensor([[1, 2], [3, 4]]), 4).tolist() == [[3, 1], [4, 2]]
