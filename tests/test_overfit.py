"""Each learned model can fit two synthetic pairs: loss falls below a fifth of its start."""

import pytest
import torch
import torch.nn.functional as F

from facesketch.data.dataset import PairDataset
from facesketch.data.pairs import find_pairs
from facesketch.registry import create_model, list_models, model_spec
from facesketch.train import make_optimizer
from facesketch.config import RunConfig


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models(learned=True))
def test_learned_model_overfits_two_pairs(name, synth_dir):
    torch.manual_seed(0)
    model, spec = create_model(name), model_spec(name)
    ds = PairDataset(find_pairs(synth_dir).pairs[:2], size=model.image_size, direction="photo2sketch")
    src, tgt = torch.stack([ds[0][0], ds[1][0]]), torch.stack([ds[0][1], ds[1][1]])
    opt = make_optimizer(model.parameters(), RunConfig(model=name, direction="photo2sketch"), spec, torch.device("cpu"))
    loss_fn = F.mse_loss if spec.schedule[0][0] == "mse" else F.l1_loss
    losses = []
    for _ in range(80):
        loss = loss_fn(model(src), tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 5:
            break
    assert losses[-1] < losses[0] / 5, f"{name}: {losses[0]:.4f} -> {losses[-1]:.4f} in {len(losses)} steps"
