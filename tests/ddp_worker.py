"""Run under torchrun by test_train.py: train a tiny conv_ae with DDP, then report whether every
rank holds the same weights (written as rank<N>.txt in the folder given as argv[1])."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from facesketch.config import RunConfig
from facesketch.train import train

out = Path(sys.argv[1])
cfg = RunConfig(model="conv_ae", direction="sketch2photo", data=sys.argv[2], protocol="random", epochs=1,
                batch_size=8, runs_dir=str(out / "runs"), seed=3)
result = train(cfg, progress=False)
flat = torch.cat([t.detach().flatten().float() for t in result.model.state_dict().values()])
gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, flat)
same = all(torch.equal(gathered[0], g) for g in gathered)
(out / f"rank{dist.get_rank()}.txt").write_text(f"{int(same)} {flat.sum().item():.6f} {len(result.history)}")
dist.destroy_process_group()
