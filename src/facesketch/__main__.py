"""`python -m facesketch` and the `facesketch` command: the process-wide torch setting, then the CLI.

The one process-wide setting facesketch makes is transparent huge pages for PyTorch's CPU
allocator. dense_ae allocates and frees ~1.7 GB of weight gradients every step (hybrid_ae 0.5 GB
of activations); with huge pages the allocator takes 512x fewer page faults for them: dense_ae
trained 2.2x, hybrid_ae 1.46x, conv_ae 1.16x faster on the 2-core development CPU
(bench/README.md). PyTorch reads THP_MEM_ALLOC_ENABLE once, at its first CPU allocation, so it is
set here, before anything imports torch. A user's own value wins; library users who want it set
it in their environment before importing torch.
"""

import os


def main() -> None:
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    from facesketch.cli import main as cli_main
    cli_main()


if __name__ == "__main__":
    main()
