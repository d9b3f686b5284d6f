"""Run configuration: one dataclass, saved as config.yaml in every run folder."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from facesketch import FacesketchError
from facesketch.direction import DIRECTIONS, Direction

DEFAULT_SYNTHETIC_N = 40
MAX_SEED = 2**32 - 1  # numpy's and the data loader's seeds must fit

# Each field as the CLI spells it, for messages; fields without a CLI option keep their name.
FLAGS = {f: "--" + f.replace("_", "-") for f in (
    "model", "direction", "data", "synthetic_n", "protocol", "test_fraction", "seed", "epochs", "epochs_scale",
    "batch_size", "lr", "device", "precision", "gan", "runs_dir", "name", "views", "recalibrate_bn", "layout")}
# Options that change where or how fast a run trains, never what it learns: free to differ on a resume.
MACHINE_FIELDS = ("device", "runs_dir", "num_workers", "layout", "layout_chosen", "precision_chosen",
                  "compile_chosen")
SCHEDULE_FIELDS = ("epochs", "epochs_scale")


def _flag(name: str) -> str:
    return FLAGS.get(name, name)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _show(v) -> str:
    return "default" if v is None else ("yes" if v is True else "no" if v is False else str(v))


SYNTHETIC_PREFIX = "data-synthetic-"  # runs_dir/data-synthetic-n<N>-s<seed>: the built-in faces (runsetup.py)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False
    return True


DEVICES = ("auto", "cpu", "cuda", "mps")


def check_device(device) -> None:
    """--device must name auto, cpu, cuda, cuda:N or mps (whether it exists is asked later)."""
    cuda_n = isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit()
    if device not in DEVICES and not cuda_n:
        raise FacesketchError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")


@dataclass
class RunConfig:
    model: str
    direction: str
    data: str | None = None            # None: the built-in synthetic faces
    synthetic_n: int = DEFAULT_SYNTHETIC_N
    protocol: str | None = None        # None: 'paper' on real data, 'random' on synthetic
    test_fraction: float | None = None  # None: not given ('random' then tests on 0.2 of the identities)
    seed: int = 0
    epochs: int | None = None          # None: the model's default schedule
    epochs_scale: float = 1.0
    batch_size: int = 32
    lr: float | None = None            # None: the model's default (1e-3 for the report's models)
    device: str = "auto"
    precision: str = "auto"            # auto (bf16 where native, faster and as good: facesketch.autotune), fp32, bf16
    gan: bool = False
    model_kwargs: dict = field(default_factory=dict)
    runs_dir: str = "runs"
    name: str | None = None            # None: <model>-<direction>-s<seed>[-gan]
    num_workers: int = 0
    views: str = "all"                 # training views: 'all' (the protocol's) or 'identity' (quick runs)
    recalibrate_bn: bool = False       # re-estimate BatchNorm statistics on the train set after training
    layout: str = "auto"               # memory layout: auto (timed per machine, facesketch.autotune), nchw, channels_last
    layout_chosen: str | None = None   # what training used (written by train; a resume keeps it)
    precision_chosen: str | None = None  # likewise for --precision
    compile_chosen: bool | None = None  # torch.compile, measured on CUDA only (None: not tried)

    def __post_init__(self):
        """Refuse any value that would fail deep inside training or train silently wrong, in one
        line naming the option (as the CLI spells it) and the value."""
        from facesketch.data.check import check_split_options
        from facesketch.registry import list_models
        names = sorted(list_models())
        if self.model not in names:
            raise FacesketchError(f"--model: unknown model {self.model!r}; choose from {', '.join(names)}")
        try:
            Direction(self.direction)
        except ValueError:
            raise FacesketchError(f"--direction must be {' or '.join(DIRECTIONS)}, got {self.direction!r}") from None
        from facesketch.autotune import check_request
        check_request(self.layout, self.precision)
        check_device(self.device)
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise FacesketchError(f"--batch-size must be a positive integer, got {self.batch_size}")
        if self.epochs is not None and (not _is_int(self.epochs) or self.epochs < 1):
            raise FacesketchError(f"--epochs must be a positive integer, got {self.epochs}")
        if not _is_finite(self.epochs_scale) or self.epochs_scale <= 0:
            raise FacesketchError(f"--epochs-scale must be a positive finite number, got {self.epochs_scale}")
        if self.lr is not None and (not _is_finite(self.lr) or self.lr <= 0):
            raise FacesketchError(f"--lr must be a positive finite number, got {self.lr}")
        check_split_options(self.protocol, self.seed, self.test_fraction)  # worded once, for `data check` too
        if not _is_int(self.synthetic_n) or self.synthetic_n < 2:
            raise FacesketchError(f"--synthetic-n must be an integer of at least 2 (a train and a test pair), "
                                  f"got {self.synthetic_n}")
        if self.views not in ("all", "identity"):
            raise FacesketchError(f"--views must be all or identity, got {self.views!r}")
        if self.gan and self.model != "unet":
            raise FacesketchError(f"--gan trains the unet with a PatchGAN discriminator; it needs --model unet, "
                                  f"got --model {self.model}")
        if self.name is not None and (not isinstance(self.name, str) or self.name in ("", ".", "..")
                                      or "/" in self.name or "\\" in self.name or Path(self.name).is_absolute()):
            raise FacesketchError(f"--name must be a plain folder name, so the run stays inside --runs-dir "
                                  f"(no '/', '..' or absolute path), got {self.name!r}")
        for flag, value in (("--name", self.name), ("--runs-dir", self.runs_dir)):
            if isinstance(value, str) and not _is_utf8(value):
                raise FacesketchError(f"{flag} must be valid UTF-8 (config.yaml, split.csv and reports store it "
                                      f"as text), got {value!r}")
        if isinstance(self.name, str) and self.name.startswith(SYNTHETIC_PREFIX):
            raise FacesketchError(f"--name must not start with {SYNTHETIC_PREFIX!r}: such folders under --runs-dir "
                                  f"hold the built-in synthetic faces, got {self.name!r}")
        if not _is_int(self.num_workers) or self.num_workers < 0:
            raise FacesketchError(f"num_workers must be a non-negative integer, got {self.num_workers}")
        if not isinstance(self.model_kwargs, dict):
            raise FacesketchError(f"model_kwargs must be a mapping, got {self.model_kwargs!r}")
        if self.protocol is None:
            self.protocol = "paper" if self.data else "random"

    @property
    def run_name(self) -> str:
        return self.name or f"{self.model}-{self.direction}-s{self.seed}{'-gan' if self.gan else ''}"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.run_name

    def stages(self, default_schedule=None) -> list[tuple[str, int]]:
        """[(loss, epochs)] after --epochs (first stage; later ones keep their ratio) and --epochs-scale;
        default_schedule: the model's spec unless given."""
        if default_schedule is None:
            from facesketch.registry import model_spec
            default_schedule = model_spec(self.model).schedule_for(self.direction)
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

    def differences(self, given: "RunConfig") -> list[str]:
        """'--flag: saved X, given Y' for each option where `given` would train this (saved) run
        differently; machine options and the schedule (epochs, epochs_scale) are left out."""
        out = []
        for f in dataclasses.fields(self):
            if f.name in MACHINE_FIELDS + SCHEDULE_FIELDS:
                continue
            if f.name == "precision" and given.precision == "auto":   # auto resumes what the run used
                continue
            if self._effective(f.name) != given._effective(f.name):
                saved, new = _show(getattr(self, f.name)), _show(getattr(given, f.name))
                out.append(f"{_flag(f.name)}: saved {saved}, given {new}")
        return out

    def _effective(self, name: str):
        """A field's value as far as training is concerned (equal values train alike)."""
        value = getattr(self, name)
        if name == "data":
            return str(Path(value).resolve()) if value else None
        if name == "synthetic_n":
            return value if not self.data else None
        if name == "test_fraction":  # only the random protocol uses it; 0.2 when not given
            return (0.2 if value is None else value) if self.protocol == "random" else None
        if name == "name":
            return self.run_name
        if name == "precision" and value == "auto":
            return self.precision_chosen or value
        if name == "lr" and value is None:
            from facesketch.registry import model_spec
            return model_spec(self.model).lr
        return value

    def schedule_text(self, default_schedule=None) -> str:
        return " + ".join(f"{loss} x{e}" for loss, e in self.stages(default_schedule)) or "none"

    def schedule_flags(self, given: "RunConfig") -> str:
        """'--epochs: saved A, given B' (and/or --epochs-scale) where the two schedules' options differ."""
        return "; ".join(f"{_flag(f)}: saved {_show(getattr(self, f))}, given {_show(getattr(given, f))}"
                         for f in SCHEDULE_FIELDS if getattr(self, f) != getattr(given, f))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".yaml.tmp")
        try:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
            tmp.replace(path)
        except BaseException:  # Ctrl-C included: never leave a stray .tmp behind
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        """Read a run's config.yaml; anything malformed is a one-line FacesketchError naming the
        file and the key. Each value's type is checked against the field's annotation (an int is
        accepted for a float); unknown keys are ignored."""
        import types
        import typing

        if not path.is_file():
            raise FacesketchError(f"{path}: run config is missing")
        try:
            # safe_load: a !!python/... tag is refused as a YAML error, never constructed or run
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise FacesketchError(f"{path}: not valid YAML{line} ({getattr(e, 'problem', None) or e})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise FacesketchError(f"{path}: cannot read the run config ({e})") from None
        if not isinstance(raw, dict):
            got = "an empty file" if raw is None else f"{type(raw).__name__} {str(raw)[:40]!r}"
            raise FacesketchError(f"{path}: expected a mapping of settings (key: value), got {got}")
        names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
                 dict: "a mapping", type(None): "null"}

        def allowed(hint) -> list:
            if typing.get_origin(hint) in (typing.Union, types.UnionType):
                return [t for a in typing.get_args(hint) for t in allowed(a)]
            return [typing.get_origin(hint) or hint]

        def fits(t, v) -> bool:
            if t in (int, float) and isinstance(v, bool):
                return False
            if t is float:
                return isinstance(v, (int, float))
            return isinstance(v, t) if isinstance(t, type) else True  # unchecked: an unusual annotation

        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise FacesketchError(f"{path}: missing required key {f.name!r}")
                continue
            value, types_ok = raw[f.name], allowed(hints[f.name])
            if not any(fits(t, value) for t in types_ok):
                expected = " or ".join(names.get(t, getattr(t, "__name__", str(t))) for t in types_ok)
                raise FacesketchError(f"{path}: {f.name} must be {expected}, got {value!r}")
            values[f.name] = value
        try:
            return cls(**values)
        except FacesketchError as e:
            raise FacesketchError(f"{path}: {e}") from None
