"""A worker process of `train-all --jobs` (facesketch.pipeline._train_at_once).

Kept apart from facesketch.pipeline, whose import loads torch and every model: a spawned worker
imports this module to run its initializer, and Ctrl-C from a terminal reaches the whole process
group, workers included. Here the initializer ignores it before anything slow is imported, so a
worker that is still starting has a fraction of a second, not the seconds torch takes, in which
Ctrl-C could print a traceback instead of leaving the parent to handle it.
"""

from __future__ import annotations

import contextlib
import os
import signal

_TRAINING = False
_STOP = None    # the parent's Event: set on Ctrl-C, before it signals the workers


def init(threads: int, stop) -> None:
    """A worker: Ctrl-C is the parent's to handle; the parent's SIGTERM interrupts a training (a
    clean stop: the last checkpoint stays) or ends an idle worker; its share of the threads."""
    global _STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    _STOP = stop
    import threading

    import torch
    from tqdm import tqdm
    torch.set_num_threads(threads)
    # tqdm's default lock is a multiprocessing semaphore; a worker ended by os._exit (see
    # train_job) once left one for Python's resource tracker to warn about: a thread lock will do
    tqdm.set_lock(threading.RLock())


def _stop(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # told once: a second SIGTERM must not break the clean stop
    if _TRAINING:
        raise KeyboardInterrupt
    os._exit(130)


def train_job(cfg, resume: bool, overwrite: bool, log) -> float:
    """One run (a facesketch.config.RunConfig) in this worker, its output (and, if it fails, its
    traceback) into `log`; returns its wall time in seconds. After Ctrl-C a run that reaches a
    worker anyway (one queued already) ends the worker at once, before it touches its folder."""
    import time
    import traceback
    global _TRAINING
    if _STOP is not None and _STOP.is_set():
        os._exit(130)
    from facesketch.train import train
    start = time.perf_counter()
    with log.open("a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        print(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {cfg.run_name}", flush=True)
        _TRAINING = True
        try:
            train(cfg, resume=resume, overwrite=overwrite, progress=False)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            os._exit(130)   # the parent asked (SIGTERM): end here, the pool takes nothing more from us
        except BaseException:
            traceback.print_exc(file=f)
            raise
        finally:
            _TRAINING = False
    return time.perf_counter() - start
