"""Batches cut on the device from a resident copy of the images (the GPU path) are the
DataLoader's batches, in the same order, and sparse checkpoints still resume exactly."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

import facesketch.train as T
from facesketch.checkpoint import MODEL_FILE, load_meta
from facesketch.config import RunConfig
from facesketch.data.dataset import PairDataset, batches
from facesketch.data.pairs import find_pairs

CPU = torch.device("cpu")


def test_resident_batches_equal_the_loaders_in_order_for_every_view(synth_dir):
    pairs = find_pairs(synth_dir).pairs[:5]
    for direction in ("photo2sketch", "sketch2photo"):
        ds = PairDataset(pairs, size=32, direction=direction, views=tuple(range(8)))
        kw = dict(batch_size=6, shuffle=True, seed=3, epoch=2)
        on_device = list(batches(ds, CPU, resident=True, **kw))
        loaded = list(batches(ds, CPU, resident=False, **kw))
        assert len(on_device) == len(loaded) == 7          # 40 items, the last batch short
        for (a_src, a_tgt), (b_src, b_tgt) in zip(on_device, loaded):
            assert a_src.dtype == b_src.dtype == torch.float32
            assert torch.equal(a_src, b_src) and torch.equal(a_tgt, b_tgt)
        assert not torch.equal(on_device[0][0], on_device[0][1])   # src and tgt are different images


def test_the_resident_path_is_taken_only_on_a_gpu(synth_dir):
    ds = PairDataset(find_pairs(synth_dir).pairs[:2], size=32, direction="photo2sketch")
    assert ds.resident_fits(CPU) is False
    # once a GPU holds the images, the answer stays yes (asked each epoch, it must not flip back)
    gpu = torch.device("cuda", 0)
    ds._resident[str(gpu)] = (ds.photos, ds.sketches)
    assert ds.resident_fits(gpu) is True


def test_a_run_whose_checkpoints_are_sparse_resumes_from_the_last_one_exactly(tmp_path, synth_dir, monkeypatch):
    """Where writing a checkpoint costs more than CHECKPOINT_SHARE of the time, epochs pass without one;
    an interruption then resumes from the last one written and still ends as an uninterrupted run."""
    cfg = lambda name: RunConfig(model="conv_ae", direction="photo2sketch", data=str(synth_dir), protocol="random",
                                 epochs=4, batch_size=4, views="identity", device="cpu", precision="fp32",
                                 runs_dir=str(tmp_path), name=name)
    straight = T.train(cfg("straight"), progress=False).run_dir
    saves, real_save = [], T.save_state
    monkeypatch.setattr(T, "CHECKPOINT_SHARE", 1e-9)    # every checkpoint now "costs" far too much ...
    monkeypatch.setattr(T, "save_state", lambda *a, **k: (saves.append(k["position"]), real_save(*a, **k))[1])
    real_epoch = T._epoch

    def interrupted(*a, **k):
        if a[4] == 4:          # epoch 4 of 4
            raise KeyboardInterrupt
        return real_epoch(*a, **k)
    monkeypatch.setattr(T, "_epoch", interrupted)
    try:
        T.train(cfg("resumed"), progress=False)
    except KeyboardInterrupt:
        pass
    run = tmp_path / "resumed"
    assert saves == [{"stage": 0, "stage_epochs_done": 1}]   # ... so only the first epoch wrote one
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 3   # the history went on
    assert load_meta(run / MODEL_FILE)["epoch"] == 1
    monkeypatch.setattr(T, "_epoch", real_epoch)
    T.train(cfg("resumed"), resume=True, progress=False)
    assert saves[-1] == {"stage": 0, "stage_epochs_done": 4}    # the end of a stage always writes one
    a, b = load_file(straight / MODEL_FILE), load_file(run / MODEL_FILE)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
