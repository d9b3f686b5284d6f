"""Turn one's own pictures into sketches or photos: `facesketch sketch` / `facesketch photo`.

A `Translator` holds one trained model for one direction (the shipped weights of a model, or any
run folder) and maps face crops to outputs in batches. `predict_paths` does the whole job for
files and folders: read each picture, find and align its face to the CUFS framing
(`facesketch.data.align`), translate, and write a PNG; one bad file is reported and skipped,
never the end of the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from facesketch import FacesketchError
from facesketch.data.align import Aligned, align_face, no_align
from facesketch.data.images import IMAGE_SUFFIXES, MIN_SIDE, read_image, resize_square, shown
from facesketch.direction import Direction, parse_direction
from facesketch.registry import model_spec

DEFAULT_MODEL = "fsnet"
# Pictures are decoded at no more than this (JPEG's reduced scales; see read_image): a face that
# fills a tenth of the picture still gets more pixels than a CUFS face has.
READ_SIDE = 1600
SUFFIX = {Direction.photo2sketch: "_sketch", Direction.sketch2photo: "_photo"}
WHAT_IN = {Direction.photo2sketch: "photo", Direction.sketch2photo: "sketch"}


class Translator:
    """One model for one direction: PIL images in, PIL images out, each at its input's size."""

    def __init__(self, model: torch.nn.Module, *, name: str, direction: Direction | str, label: str,
                 device: torch.device | None = None, layout: str = "auto", precision: str = "auto"):
        self.direction = parse_direction(direction)
        self.name, self.label = name, label
        self.device = device or torch.device("cpu")
        self.model = model.to(self.device).eval()
        self.size = model.image_size
        self.uses_view = model_spec(name).uses_view
        self.layout, self.precision = layout, precision   # "auto" until the first call tunes them

    def tune(self) -> tuple[str, str]:
        """Settle --layout/--precision auto for this machine (facesketch.autotune; cached there)."""
        if "auto" in (self.layout, self.precision):
            from facesketch.evaluate import tune_inference
            self.model, self.layout, self.precision = tune_inference(self.model, self.name, self.device, self.layout,
                                                                     self.precision, quiet=True)
        return self.layout, self.precision

    @classmethod
    def shipped(cls, name: str, direction: Direction | str, *, device: torch.device | None = None,
                **tuning) -> Translator:
        from facesketch.shipped import load_shipped
        direction = parse_direction(direction)
        model, _ = load_shipped(name, direction.value)
        return cls(model, name=name, direction=direction, label=f"{name} (shipped)", device=device, **tuning)

    @classmethod
    def from_run(cls, run: Path, *, direction: Direction | str | None = None,
                 device: torch.device | None = None, **tuning) -> Translator:
        from facesketch.evaluate import load_run_model
        model, cfg = load_run_model(Path(run))
        if direction is not None and parse_direction(direction) != parse_direction(cfg.direction):
            raise FacesketchError(f"--run {run}: it was trained for {cfg.direction}, this needs "
                                  f"{parse_direction(direction).value}")
        return cls(model, name=cfg.model, direction=cfg.direction, label=f"{cfg.model} ({Path(run).name})",
                   device=device, **tuning)

    @torch.no_grad()
    def __call__(self, images: list[Image.Image], *, batch_size: int = 8) -> list[Image.Image]:
        from facesketch.autotune import infer_context, inference_input
        self.tune()
        out: list[Image.Image] = []
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            x = np.stack([np.asarray(resize_square(im.convert("RGB"), self.size), dtype=np.uint8) for im in chunk])
            x = inference_input(torch.from_numpy(x).to(self.device).permute(0, 3, 1, 2).float().div_(255.0),
                                self.layout)
            with infer_context(self.device, self.precision):
                if self.uses_view:
                    y = self.model(x, view=torch.zeros(len(chunk), dtype=torch.long, device=self.device))
                else:
                    y = self.model(x)
            y = (y.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for im, arr in zip(chunk, y):
                res = Image.fromarray(arr).resize(im.size, Image.BILINEAR)
                out.append(res.convert("L") if self.direction == Direction.photo2sketch else res)
        return out


def load_translator(direction: Direction | str, *, model: str | None = None, run: Path | None = None,
                    device: torch.device | None = None, layout: str = "auto", precision: str = "auto") -> Translator:
    """--run RUN, else --model NAME's shipped weights, else the shipped flagship."""
    if run is not None and model is not None:
        raise FacesketchError("give --run or --model, not both")
    from facesketch.autotune import check_request
    check_request(layout, precision)
    if run is not None:
        return Translator.from_run(run, direction=direction, device=device, layout=layout, precision=precision)
    return Translator.shipped(model or DEFAULT_MODEL, direction, device=device, layout=layout, precision=precision)


def prepare(image: Image.Image, *, align: bool = True, all_faces: bool = False, name: str = "image") -> list[Aligned]:
    """The crop(s) a model should see: the aligned face(s), or the picture itself."""
    return align_face(image, all_faces=all_faces, name=name) if align else [no_align(image)]


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    w, h = left.size
    out = Image.new("RGB", (2 * w, h), "white")
    out.paste(left.convert("RGB"), (0, 0))
    out.paste(right.convert("RGB").resize((w, h), Image.BILINEAR), (w, 0))
    return out


@dataclass
class Job:
    """What predict_paths did: written files, and each skipped input with its reason."""
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def collect_inputs(inputs: list[Path], *, recursive: bool, suffix: str) -> tuple[list[tuple[Path, Path]], Job]:
    """(file, the folder its output name is relative to) for every picture to do, each file once
    however often it is given. A given file that is not a picture, or is missing, and any other
    file inside a given folder, is a failure of the job, named; so is a folder with no picture."""
    job, found, seen = Job(), [], set()
    accepted = ", ".join(sorted(IMAGE_SUFFIXES))

    def take(f: Path, base: Path) -> None:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            found.append((f, base))

    for given in inputs:
        if given.is_dir():
            before = len(found)
            for f in sorted(given.rglob("*") if recursive else given.iterdir()):
                if f.is_dir():
                    continue
                if not f.is_file():
                    job.failed.append((f, "not a readable file (a broken link?)"))
                elif f.suffix.lower() not in IMAGE_SUFFIXES:
                    job.failed.append((f, f"not an image file (expected {accepted})"))
                elif f.stem.endswith(suffix) and f.suffix.lower() == ".png":
                    job.notes.append(f"{shown(f)}: skipped, its name says it is an earlier output of this command")
                else:
                    take(f, given)
            if len(found) == before:
                sub = "" if recursive or not any(p.is_dir() for p in given.iterdir()) else " (sub-folders need -r)"
                job.failed.append((given, f"no picture to do in this folder{sub}"))
        elif given.is_file():
            if given.suffix.lower() not in IMAGE_SUFFIXES:
                job.failed.append((given, f"not an image file (expected {accepted})"))
            else:
                take(given, given.parent)
        else:
            job.failed.append((given, "no such file or folder"))
    return found, job


def check_picture(image: Image.Image, name: str) -> None:
    """Refuse what no model can use: a picture under MIN_SIDE px, or one of a single tone."""
    if min(image.size) < MIN_SIDE:
        raise FacesketchError(f"{name}: {image.width}x{image.height} pixels, below the {MIN_SIDE} px per side "
                              "a face needs")
    lo, hi = image.convert("L").getextrema()
    if hi - lo < 8:
        raise FacesketchError(f"{name}: a blank picture (one tone, {lo}..{hi}); nothing to translate")


def output_path(src: Path, base: Path, out: Path | None, suffix: str, face: int | None = None) -> Path:
    """Beside the input (or under --out, keeping the path below `base`): <stem><suffix>[_face<k>].png."""
    name = f"{src.stem}{suffix}" + (f"_face{face}" if face is not None else "") + ".png"
    if out is None:
        return src.with_name(name)
    rel = src.relative_to(base).parent if base in src.parents else Path()
    return out / rel / name


def predict_paths(translator: Translator, inputs: list[Path], *, out: Path | None = None, recursive: bool = False,
                  align: bool = True, all_faces: bool = False, side: bool = False, overwrite: bool = False,
                  batch_size: int = 8, progress: bool = True) -> Job:
    """Translate every picture in `inputs` (files, folders) and write PNGs; see the module doc."""
    d = translator.direction
    suffix = SUFFIX[d]
    files, job = collect_inputs([Path(p) for p in inputs], recursive=recursive, suffix=suffix)
    pending: list[tuple[Aligned, Path]] = []
    planned: dict[Path, Path] = {}   # output -> the input it is for: two inputs never share one

    def flush():
        outs = translator([a.image for a, _ in pending], batch_size=batch_size)
        for (a, dest), res in zip(pending, outs):
            dest.parent.mkdir(parents=True, exist_ok=True)
            img = side_by_side(a.image, res) if side else res
            tmp = dest.with_name(dest.name + ".tmp")
            img.save(tmp, format="PNG")
            tmp.replace(dest)
            job.written.append(dest)
        pending.clear()

    bar = tqdm(files, desc=f"{translator.label}: {d.value}", unit="image", disable=not progress or len(files) < 2)
    for src, base in bar:
        try:
            image, _ = read_image(src, max_side=READ_SIDE)
            check_picture(image, shown(src))
            if d == Direction.photo2sketch and image.mode == "L":
                job.notes.append(f"{shown(src)}: a greyscale photo; the model was trained on colour photos, "
                                 "so its sketch may be weaker")
            crops = prepare(image, align=align, all_faces=all_faces, name=shown(src))
        except FacesketchError as e:
            job.failed.append((src, str(e).removeprefix(shown(src) + ": ")))
            continue
        except (OSError, ValueError, SyntaxError) as e:  # Pillow's ways of saying "not a picture"
            job.failed.append((src, f"cannot read it as an image ({type(e).__name__}: {e})"))
            continue
        for k, crop in enumerate(crops):
            dest = output_path(src, base, out, suffix, face=k + 1 if all_faces and len(crops) > 1 else None)
            if dest.is_dir():
                job.failed.append((src, f"its output {shown(dest)} is a folder"))
                continue
            if dest.exists() and not overwrite:
                job.failed.append((src, f"{shown(dest)} exists; --overwrite replaces it"))
                continue
            if dest.resolve() == src.resolve():
                job.failed.append((src, "its output would replace it"))
                continue
            if (other := planned.get(dest.resolve())) is not None:
                job.failed.append((src, f"its output {shown(dest)} is already that of {shown(other)}; rename one, "
                                        "or give them separate --out folders"))
                continue
            planned[dest.resolve()] = src
            pending.append((crop, dest))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return job
