"""The quality effect of `--precision bf16`: the same run trained in fp32 and in bf16.

One model, one direction, the same seed, data, split and schedule; only the precision differs.
Both runs are evaluated the same way (fp32 inference, the project's metrics), and the table of
metrics, their differences and the training speed goes into bench/README.md. On a CPU without
native bf16 the bf16 run is emulated and slow, so the default schedule is short.

    python bench/bf16_quality.py [--model conv_ae] [--epochs 4] [--n 24]
"""

from __future__ import annotations

from facesketch.process import configure_process

configure_process()  # huge pages, as the facesketch command sets them, before torch allocates

import argparse
import tempfile
import time
from pathlib import Path

from readme_block import write_block

METRICS = ("mae", "rmse", "ssim", "psnr")


def run_one(model: str, precision: str, epochs: int, n: int, runs: Path) -> dict:
    from facesketch.config import RunConfig
    from facesketch.evaluate import evaluate
    from facesketch.train import train

    cfg = RunConfig(model=model, direction="photo2sketch", synthetic_n=n, protocol="random", test_fraction=0.25,
                    seed=0, epochs=epochs, batch_size=6, views="identity", precision=precision,
                    runs_dir=str(runs), name=f"{model}-{precision}", recalibrate_bn=True)
    result = train(cfg, progress=False)
    summary = evaluate(result.run_dir, save_images=False, progress=False)
    seconds = sum(h["seconds"] for h in result.history)
    images = sum(h["images_per_s"] * h["seconds"] for h in result.history)
    return {"precision": precision, "metrics": summary["metrics"], "train_images_per_s": images / seconds,
            "final_train_loss": result.history[-1]["train_loss"], "test_pairs": summary["n"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="conv_ae")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--n", type=int, default=24, help="synthetic identities")
    args = ap.parse_args()
    import torch

    from facesketch.registry import list_models
    if args.model not in list_models(learned=True):
        raise SystemExit(f"--model {args.model!r}: expected a learned model ({', '.join(list_models(learned=True))})")
    if args.epochs < 1 or args.n < 8:
        raise SystemExit(f"expected --epochs >= 1 and --n >= 8, got {args.epochs} and {args.n}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for precision in ("fp32", "bf16"):
            t = time.perf_counter()
            rows.append(run_one(args.model, precision, args.epochs, args.n, Path(tmp)))
            print(f"{precision}: {rows[-1]} ({time.perf_counter() - t:.0f} s)", flush=True)
    fp32, bf16 = rows
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    lines = [f"Measured {time.strftime('%Y-%m-%d')}, torch {torch.__version__}, native bf16: "
             f"{'yes' if native else 'NO (emulated)'}. `{args.model}` photo2sketch, built-in synthetic set "
             f"({args.n} identities, random protocol, {fp32['test_pairs']} test pairs), {args.epochs} epochs, "
             "batch 6, seed 0; evaluation in fp32.", "",
             "| precision | " + " | ".join(METRICS) + " | final train loss | train images/s |",
             "|---" * (len(METRICS) + 3) + "|"]
    for r in rows:
        lines.append(f"| {r['precision']} | " + " | ".join(f"{r['metrics'][m]:.4f}" for m in METRICS)
                     + f" | {r['final_train_loss']:.4f} | {r['train_images_per_s']:.2f} |")
    lines.append("| bf16 - fp32 | " + " | ".join(f"{bf16['metrics'][m] - fp32['metrics'][m]:+.4f}" for m in METRICS)
                 + f" | {bf16['final_train_loss'] - fp32['final_train_loss']:+.4f} | "
                 f"{bf16['train_images_per_s'] / fp32['train_images_per_s']:.2f}x |")
    write_block("bf16_quality", lines, "bf16 quality (`python bench/bf16_quality.py`)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
