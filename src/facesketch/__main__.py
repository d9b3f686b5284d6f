"""`python -m facesketch` and the `facesketch` command: the process-wide memory settings, then the CLI.

facesketch/process.py holds the settings (huge pages for PyTorch's CPU allocator, glibc's heap
kept between steps) and why. PyTorch reads THP_MEM_ALLOC_ENABLE once, at its first CPU
allocation, so they are made here, before anything imports torch.
"""


def main() -> None:
    try:
        from facesketch.process import configure_process
        configure_process()
        from facesketch.cli import main as cli_main
    except KeyboardInterrupt:
        # Ctrl-C while torch loads: the CLI's own answer to it, not a traceback. Nothing is done yet
        # but half-run imports, whose exit hooks could fail on them: leave without running those.
        import os
        import sys
        print("interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    cli_main()


if __name__ == "__main__":
    main()
