import numpy as np

from facesketch.identify import PCADescriptor, identification


def test_perfect_probes_rank1_and_chance():
    rng = np.random.default_rng(0)
    gallery = rng.random((8, 32, 32, 3))
    train = rng.random((20, 32, 32, 3))
    out = identification(PCADescriptor(train), gallery.copy(), gallery)
    assert out["rank1"] == 1.0 and out["rank5"] == 1.0
    assert out["chance_rank1"] == 1 / 8 and out["chance_rank5"] == 5 / 8 and out["n"] == 8


def test_probes_of_other_identities_fail():
    rng = np.random.default_rng(1)
    gallery = rng.random((10, 32, 32, 3))
    train = rng.random((30, 32, 32, 3))
    shifted = np.roll(gallery, 1, axis=0)  # probe i looks exactly like identity i-1
    out = identification(PCADescriptor(train), shifted, gallery)
    assert out["rank1"] == 0.0
