"""The commands for one's own pictures: sketch, photo, identify, serve, and `data align`.

Thin wrappers over facesketch.predict, facesketch.gallery, facesketch.data.align_set and
facesketch.app; registered on the main app by `register`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facesketch import FacesketchError
from facesketch.direction import Direction

_MODEL_HELP = "a model with shipped weights (see `facesketch models`; default fsnet)"
_RUN_HELP = "a run folder written by `facesketch train` (its direction must fit the command)"
_DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"  # as train's --device
_LAYOUT_HELP = "auto (the faster on this machine, timed once and cached), nchw or channels_last"
_PRECISION_HELP = ("auto (bf16 where this CPU/GPU runs it natively, it is faster and its pictures match fp32's "
                   "to within one grey level on average; else fp32), fp32 or bf16")


def _fail(message: str, code: int = 2):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _translator(direction: Direction, model: str | None, run: Path | None, device: str, layout: str = "auto",
                precision: str = "auto"):
    from facesketch.config import check_device
    from facesketch.predict import load_translator
    from facesketch.runtime import resolve_device
    check_device(device)
    return load_translator(direction, model=model, run=run, device=resolve_device(device), layout=layout,
                           precision=precision)


def _predict(direction: Direction, inputs: list[Path], out, recursive, no_align, all_faces, side_by_side,
             overwrite, model, run, batch_size, device, nice, layout="auto", precision="auto") -> None:
    import os

    from facesketch.data.images import shown
    from facesketch.predict import predict_paths
    if batch_size < 1:
        _fail(f"--batch-size must be at least 1, got {batch_size}")
    if not 0 <= nice <= 19:
        _fail(f"--nice must be 0-19, got {nice}")
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    if out is not None and out.exists() and not out.is_dir():
        _fail(f"--out {shown(out)} is a file; expected a folder")
    try:
        translator = _translator(direction, model, run, device, layout, precision)
        job = predict_paths(translator, inputs, out=out, recursive=recursive, align=not no_align,
                            all_faces=all_faces, side=side_by_side, overwrite=overwrite, batch_size=batch_size)
    except FacesketchError as e:
        _fail(str(e))
    for note in job.notes:
        typer.echo(f"note: {note}", err=True)
    for path, why in job.failed:
        typer.echo(f"skipped {shown(path)}: {why}", err=True)
    where = f" in {shown(out)}" if out is not None else " beside the inputs"
    typer.echo(f"{translator.label} {direction.value}: wrote {len(job.written)} image(s){where}"
               + (f"; {len(job.failed)} input(s) skipped (see above)" if job.failed else ""))
    if job.failed:
        raise typer.Exit(1)


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    def predict_command(direction: Direction, name: str, what: str, makes: str, plural: dict[str, str]):
        @app.command(name)
        def command(
            inputs: list[Path] = typer.Argument(..., help=f"{what} files or folders"),
            out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for the outputs (default: beside each "
                                               f"input, named <name>_{makes}.png)"),
            recursive: bool = typer.Option(False, "--recursive", "-r", help="also take pictures in sub-folders"),
            no_align: bool = typer.Option(False, "--no-align", help="take each picture as an already framed face "
                                          "crop: no face detection (the output keeps the size it was read at; JPEGs over 1600 px are read at 1/2-1/8 scale)"),
            all_faces: bool = typer.Option(False, "--all-faces", help="every face found, each to its own file "
                                           "(default: the largest)"),
            side_by_side: bool = typer.Option(False, "--side-by-side", help="write the aligned input and the "
                                              "output side by side"),
            overwrite: bool = typer.Option(False, "--overwrite", help="replace outputs that already exist"),
            model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
            run: Optional[Path] = typer.Option(None, "--run", help=_RUN_HELP),
            batch_size: int = typer.Option(8, "--batch-size", help="pictures per model call"),
            device: str = typer.Option("auto", "--device", help=_DEVICE_HELP),
            layout: str = typer.Option("auto", "--layout", help=_LAYOUT_HELP),
            precision: str = typer.Option("auto", "--precision", help=_PRECISION_HELP),
            nice: int = typer.Option(10, "--nice", help="lower this job's CPU priority by this much (0-19; 0 keeps "
                                     "it) so that `facesketch serve` and other interactive work stay responsive"),
        ):
            _predict(direction, inputs, out, recursive, no_align, all_faces, side_by_side, overwrite, model, run,
                     batch_size, device, nice, layout, precision)
        command.__doc__ = (f"Turn {plural[what]} into {plural[makes]}: find and align each face to the CUFS framing, translate it, "
                           "write a PNG. Bad files are reported and skipped; exit 1 if any was.")
        return command

    plural = {"photo": "photos", "sketch": "sketches"}
    predict_command(Direction.photo2sketch, "sketch", "photo", "sketch", plural)
    predict_command(Direction.sketch2photo, "photo", "sketch", "photo", plural)

    @app.command("identify")
    def identify_cmd(
        sketch: Path = typer.Argument(..., help="the sketch of the person to find"),
        gallery: Path = typer.Option(..., "--gallery", "-g", help="folder of face photos to search (sub-folders too)"),
        top: int = typer.Option(5, "--top", "-k", help="how many matches to show"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for contact.png, matches.csv and "
                                           "index.html (default identify-<sketch name>)"),
        no_align: bool = typer.Option(False, "--no-align", help="pictures are already framed face crops"),
        model: Optional[str] = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
        run: Optional[Path] = typer.Option(None, "--run", help="a run folder: photo2sketch compares the gallery as "
                                           "sketches, sketch2photo the sketch as a photo"),
        via: Optional[str] = typer.Option(None, "--via", help="compare as 'photo' (the sketch -> a photo; the default, "
                                          "better on CUFS 88/100) or 'sketch' (the gallery photos -> sketches)"),
        device: str = typer.Option("auto", "--device", help=_DEVICE_HELP),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace the results of an earlier search in --out"),
    ):
        """Find who a sketch shows: rank a gallery of face photos; prints the top K and writes a contact sheet."""
        from facesketch.data.images import read_image, shown
        from facesketch.gallery import DEFAULT_VIA, PLURAL, RESULT_FILES, VIA, Gallery, write_results
        from facesketch.predict import READ_SIDE, prepare
        if top < 1:
            _fail(f"--top must be at least 1, got {top}")
        if via is not None and via not in VIA:
            _fail(f"--via must be sketch or photo, got {via!r}")
        if via is not None and run is not None:
            _fail("--via goes with shipped weights; a --run's direction decides how it compares")
        if sketch.is_dir():
            _fail(f"{shown(sketch)} is a folder; give one sketch file (the photos to search go in --gallery)")
        if not sketch.is_file():
            _fail(f"{shown(sketch)}: no such file")
        out = out or Path(f"identify-{sketch.stem}")
        if out.exists() and not out.is_dir():
            _fail(f"--out {shown(out)} is a file; expected a folder")
        if not overwrite and any((out / f).exists() for f in RESULT_FILES):
            _fail(f"--out {shown(out)} holds an earlier search; --overwrite replaces it")
        try:
            image, _ = read_image(sketch, max_side=READ_SIDE)
        except FacesketchError as e:
            _fail(str(e))
        except (OSError, ValueError, SyntaxError) as e:
            _fail(f"{shown(sketch)}: cannot read it as an image ({type(e).__name__})")
        try:
            crop = prepare(image, align=not no_align, name=shown(sketch))[0].image.convert("RGB")
            translator = _translator(VIA[via or DEFAULT_VIA], model, run, device)
            g = Gallery(gallery, translator=translator, align=not no_align)
            matches, generated = g.search(crop, top=top)
        except FacesketchError as e:
            _fail(str(e))
        for path, why in g.skipped:
            typer.echo(f"skipped {shown(path)}: {why}", err=True)
        n = len(g.entries)
        typer.echo(f"{shown(sketch)} against {n} photos of {shown(gallery)} (compared as {PLURAL[g.via]} by "
                   f"{translator.label}; chance of rank 1: {1 / n:.3f})")
        for m in matches:
            typer.echo(f"{m.rank:>3}  {m.score:.4f}  {shown(m.entry.path)}")
        page = write_results(out, sketch, crop, matches, generated, g)
        typer.echo(f"contact sheet: {shown(page)}")

    @app.command("serve")
    def serve_cmd(
        host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0 for every interface)"),
        port: int = typer.Option(7860, "--port", help="port to listen on"),
        runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="offer the run folders under it beside the "
                                                "shipped weights"),
        gallery: Optional[Path] = typer.Option(None, "--gallery", help="folder of face photos for the identify tab"),
    ):
        """A web app (Gradio): photo -> sketch, sketch (upload or draw) -> photo, identify against --gallery.

        Needs the app extra: pip install -e '.\\[app]'."""
        from facesketch.app import serve
        if not 0 < port < 65536:
            _fail(f"--port must be 1-65535, got {port}")
        for flag, folder in (("--runs-dir", runs_dir), ("--gallery", gallery)):
            if folder is not None and not folder.is_dir():
                _fail(f"{flag} {folder}: " + ("not a folder" if folder.exists() else "no such folder"))
        import socket
        try:  # Gradio's own message for a busy port or a bad host speaks of launch() and env variables
            with socket.create_server((host, port)):
                pass
        except OSError as e:
            _fail(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port or --host")
        try:
            serve(host=host, port=port, runs_dir=runs_dir, gallery=gallery)
        except FacesketchError as e:
            _fail(str(e))

    @data_app.command("align")
    def data_align(
        raw: Path = typer.Argument(..., help="a raw paired dataset (folder or CSV manifest), pictures of any size"),
        out: Path = typer.Argument(..., help="new or empty folder for the aligned copy (photos/ + sketches/)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="write into OUT even if it holds files"),
    ):
        """Write an aligned copy of a raw paired set: photo and sketch each aligned to the CUFS framing (200x250)
        by their own detected face; pairs where either fails are listed, not guessed."""
        from facesketch.data.align_set import align_dataset
        try:
            report = align_dataset(raw, out, overwrite=overwrite)
        except FacesketchError as e:
            _fail(str(e))
        for name, why in report.failed:
            typer.echo(f"not aligned {name}: {why}" if name != "-" else f"not used: {why}", err=True)
        typer.echo(f"aligned {report.written} of {report.total} pairs into {out}"
                   + (f"; {len(report.failed)} listed in {report.failed_file}" if report.failed else ""))
        if not report.written:
            raise typer.Exit(1)
