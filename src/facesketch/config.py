"""Run configuration: one dataclass, saved as config.yaml in every run folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from facesketch import FacesketchError
from facesketch.data.dataset import Direction

DEFAULT_SYNTHETIC_N = 40


@dataclass
class RunConfig:
    model: str
    direction: str
    data: str | None = None            # None: the built-in synthetic faces
    synthetic_n: int = DEFAULT_SYNTHETIC_N
    protocol: str | None = None        # None: 'paper' on real data, 'random' on synthetic
    test_fraction: float = 0.2
    seed: int = 0
    epochs: int | None = None          # None: the model's default schedule
    epochs_scale: float = 1.0
    batch_size: int = 32
    lr: float | None = None            # None: the model's default (1e-3 for the report's models)
    device: str = "auto"
    precision: str = "fp32"
    gan: bool = False
    model_kwargs: dict = field(default_factory=dict)
    runs_dir: str = "runs"
    name: str | None = None            # None: <model>-<direction>-s<seed>[-gan]
    num_workers: int = 0
    views: str = "all"                 # training views: 'all' (the protocol's) or 'identity' (quick runs)
    recalibrate_bn: bool = False       # re-estimate BatchNorm statistics on the train set after training

    def __post_init__(self):
        try:
            Direction(self.direction)
        except ValueError:
            raise FacesketchError(f"direction must be photo2sketch or sketch2photo, got {self.direction!r}") from None
        if self.precision not in ("fp32", "bf16"):
            raise FacesketchError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise FacesketchError(f"device must be auto, cpu, cuda or mps, got {self.device!r}")
        if self.batch_size < 1 or self.epochs_scale <= 0 or (self.epochs is not None and self.epochs < 1):
            raise FacesketchError("batch size, epochs and epochs scale must be positive")
        if self.views not in ("all", "identity"):
            raise FacesketchError(f"views must be 'all' or 'identity', got {self.views!r}")
        if self.protocol is None:
            self.protocol = "paper" if self.data else "random"

    @property
    def run_name(self) -> str:
        return self.name or f"{self.model}-{self.direction}-s{self.seed}{'-gan' if self.gan else ''}"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.run_name

    def stages(self, default_schedule) -> list[tuple[str, int]]:
        """[(loss, epochs)] after --epochs (first stage; later ones keep their ratio) and --epochs-scale."""
        if not default_schedule:
            return []
        first = default_schedule[0][1]
        out = []
        for loss, epochs in default_schedule:
            if self.epochs is not None:
                epochs = epochs * self.epochs / first
            out.append((loss, max(1, round(epochs * self.epochs_scale))))
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        if not path.is_file():
            raise FacesketchError(f"{path}: run config is missing")
        raw = yaml.safe_load(path.read_text()) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})
