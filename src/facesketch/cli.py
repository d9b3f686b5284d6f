"""The `facesketch` command line: thin wrappers over library functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from facesketch import FacesketchError

app = typer.Typer(
    help="facesketch: train, compare and serve deep models that turn a face photo into a pencil "
         "sketch (photo2sketch) and a sketch back into a photo (sketch2photo). It implements the "
         "three autoencoders of the reproduced report (dense_ae, conv_ae, hybrid_ae), a pix2pix U-Net "
         "and classical baselines, on CUFS, your own paired folders, or built-in synthetic faces.\n\n"
         "Start with `facesketch demo` (no data needed), then `facesketch reproduce --data CUFS_DIR`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Inspect datasets and generate the built-in synthetic faces.", no_args_is_help=True)
app.add_typer(data_app, name="data")

PROTOCOL_HELP = "paper (report split), cufs-standard (88/100), random (seeded), manifest (CSV split column)"


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@data_app.command("check")
def data_check(
    path: Path = typer.Argument(..., help="dataset folder (photos/ + sketches/, or A/ + B/) or CSV manifest"),
    protocol: str = typer.Option("paper", help=PROTOCOL_HELP),
    seed: int = typer.Option(0, help="seed for --protocol random"),
    test_fraction: float = typer.Option(0.2, help="test share of identities for --protocol random"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a summary"),
):
    """Validate a dataset: pairing, readable images, sizes; show the split. Exit 1 if unusable."""
    from facesketch.data.check import check_dataset, format_check
    report = check_dataset(path, protocol=protocol, seed=seed, test_fraction=test_fraction)
    typer.echo(json.dumps(report) if as_json else format_check(report, path))
    raise typer.Exit(0 if not report["problems"] else 1)


@data_app.command("synth")
def data_synth(
    out: Path = typer.Argument(..., help="folder to write photos/ and sketches/ into"),
    n: int = typer.Option(100, "--n", min=1, help="number of pairs (identities)"),
    seed: int = typer.Option(0, help="same seed -> byte-identical files"),
):
    """Draw N synthetic face photo/sketch pairs (200x250, CUFS layout)."""
    from facesketch.data.synthetic import write_synthetic
    write_synthetic(out, n=n, seed=seed)
    typer.echo(f"wrote {n} pairs to {out}/photos and {out}/sketches")


def main() -> None:
    try:
        app()
    except FacesketchError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
