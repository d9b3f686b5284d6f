"""`facesketch serve`: the models in a web page (Gradio), for people who would rather not use a terminal.

Three tabs: Photo -> sketch (upload, or the webcam: browsers allow it on localhost or HTTPS only),
Sketch -> photo (upload, or draw on a sketch pad) and Identify (rank the photos of `--gallery DIR`
by a sketch; only when the server was started with a gallery). Each tab lists the shipped weights
and every run folder directly under `--runs-dir` trained for its direction, read again on each
page load; a model, and a gallery per model, is loaded once and kept.

Limits. Uploads reach the same checks as `facesketch sketch`, never pixels Gradio decoded first:
  - at most MAX_UPLOAD_BYTES (20 MB) per file: Gradio refuses a bigger upload, the handlers check again;
  - at most 8192 px per side and 40 megapixels as the file's header declares them, refused before
    decoding (`data.images.read_image`), and a file Pillow can decode (JPEG, PNG, BMP, TIFF, WebP);
  - a face the detector finds, unless "align face" is unticked (drawn sketches rarely are found).
A bad upload, a blank picture, no face or a run that will not load is one status line in the page,
never a traceback, and the server goes on serving. Gradio 6's gr.Image(type="filepath") opens the
file with Pillow before the handler runs and shows a bare "Error" for a corrupt one, so the events
run with preprocess=False: the handler gets the path of the upload (which Gradio has checked lies
in its upload folder) and reads it itself.
Model work is queued (CONCURRENCY, QUEUE_SIZE); a visitor sees their place in the queue.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from facesketch import FacesketchError
from facesketch.checkpoint import MODEL_FILE
from facesketch.config import RunConfig
from facesketch.data.align import NoFaceError
from facesketch.data.images import read_image, shown
from facesketch.gallery import Gallery, contact_sheet
from facesketch.predict import READ_SIDE, load_translator, prepare
from facesketch.shipped import shipped_models

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
CONCURRENCY = 1     # model jobs at once, all tabs together: a CPU gains nothing from more
QUEUE_SIZE = 32     # jobs waiting before new ones are turned away
TOP_K_MAX = 20
NEEDS_APP = "facesketch serve needs the app extra: pip install -e '.[app]'"
IN_OUT = {"photo2sketch": ("photo", "sketch"), "sketch2photo": ("sketch", "photo")}
DRAWING = "your drawing"
log = logging.getLogger(__name__)


def _gradio():
    try:
        import gradio
    except ImportError:
        raise FacesketchError(NEEDS_APP) from None
    return gradio


@dataclass(frozen=True)
class Source:
    """Where a model comes from: the shipped weights of `model`, or the run folder `run`."""
    direction: str
    model: str | None = None
    run: Path | None = None


def model_sources(direction: str, runs_dir: Path | None = None) -> dict[str, Source]:
    """{label: source}: the shipped weights for `direction`, then each run under runs_dir trained for it."""
    out = {f"{m} (shipped)": Source(direction, model=m) for m, ds in shipped_models().items() if direction in ds}
    runs = sorted(Path(runs_dir).iterdir()) if runs_dir is not None and Path(runs_dir).is_dir() else []
    for run in (r for r in runs if (r / "config.yaml").is_file() and (r / MODEL_FILE).is_file()):
        try:
            cfg = RunConfig.load(run / "config.yaml")
        except Exception:  # noqa: BLE001 - an unreadable run is left out of the list, never breaks the page
            continue
        if cfg.direction == direction:
            out.setdefault(f"{cfg.model} ({run.name})", Source(direction, run=run))
    return out


def identify_sources(runs_dir: Path | None = None) -> dict[str, Source]:
    """Models for Identify: photo2sketch ones compare "via sketch" (CUFS's better route), sketch2photo "via photo"."""
    return {f"{label}, via {IN_OUT[d][1]}": src
            for d in ("photo2sketch", "sketch2photo") for label, src in model_sources(d, runs_dir).items()}


@dataclass(frozen=True)
class Upload:
    path: Path
    name: str   # the name to show: the visitor's own file name


def upload_of(payload) -> Upload | None:
    """The file behind a raw Gradio value: a path, a FileData dict, or a sketch pad's dict (its composite)."""
    if isinstance(payload, (str, Path)):
        return Upload(Path(payload), Path(payload).name)
    if isinstance(payload, dict) and "composite" in payload:
        up = upload_of(payload.get("composite"))
        return up and Upload(up.path, DRAWING)
    if isinstance(payload, dict) and payload.get("path"):
        return Upload(Path(payload["path"]), payload.get("orig_name") or Path(payload["path"]).name)
    return None


def read_upload(up: Upload) -> Image.Image:
    """The upload as an 'RGB' or 'L' image, after the byte and pixel limits; FacesketchError otherwise."""
    size = up.path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise FacesketchError(f"{up.name}: {size / 2**20:.1f} MB, above the limit of {MAX_UPLOAD_BYTES / 2**20:g} MB")
    try:
        image, _ = read_image(up.path, max_side=READ_SIDE)
    except FacesketchError as e:
        raise FacesketchError(str(e).replace(shown(up.path), up.name)) from None
    except (OSError, ValueError, SyntaxError) as e:  # Pillow's ways of saying "not a picture"
        raise FacesketchError(f"{up.name}: not a picture this app can read ({type(e).__name__}); "
                              "upload a JPEG, PNG, BMP, TIFF or WebP file") from None
    lo, hi = image.convert("L").getextrema()
    if hi - lo < 8:
        raise FacesketchError("the drawing is empty: draw a face first" if up.name == DRAWING
                              else f"{up.name}: a blank picture (one flat colour), nothing to translate")
    return image


def face_crop(image: Image.Image, *, align: bool, name: str) -> tuple[Image.Image, str]:
    """The crop a model sees (the CUFS-framed face, or the picture itself) and a note on how it was found."""
    try:
        a = prepare(image, align=align, name=name)[0]
    except NoFaceError:
        raise FacesketchError(f"{name}: no face found; if it is already a face crop or a drawing, "
                              "untick \"align face\"") from None
    if a.face is None:
        return a.image, "not aligned"
    return a.image, "face aligned" + ("" if a.face.eyes_detected else " (eyes placed from the face box)")


def _md(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def failed(message: str) -> str:
    return f"**Could not do it.** {_md(message)}"


def guarded(blank: int):
    """Turn any exception of a handler into `blank` empty outputs and a status line."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args):
            try:
                return fn(*args)
            except FacesketchError as e:
                return (None,) * blank + (failed(str(e)),)
            except Exception as e:  # noqa: BLE001 - a web page shows a message, the log keeps the traceback
                log.exception("facesketch serve: %s failed", fn.__name__)
                return (None,) * blank + (failed(f"unexpected {type(e).__name__}: {e} (the server log has details)"),)
        return run
    return wrap


class Handlers:
    """The app's state (model and gallery caches) and what each button does."""

    def __init__(self, *, runs_dir: Path | None = None, gallery: Path | None = None):
        self.runs_dir, self.gallery_dir = runs_dir, gallery
        self._translators: dict = {}
        self._galleries: dict = {}
        self._lock = threading.Lock()

    def choices(self, tab: str) -> dict[str, Source]:
        return identify_sources(self.runs_dir) if tab == "identify" else model_sources(tab, self.runs_dir)

    def translator(self, tab: str, label: str):
        src = self.choices(tab).get(label)
        if src is None:
            raise FacesketchError(f"model {label!r} is not available; reload the page for the current list")
        stamp = (src.run / MODEL_FILE).stat().st_mtime_ns if src.run else None  # a retrained run reloads
        with self._lock:
            if (src, stamp) not in self._translators:
                self._translators[src, stamp] = load_translator(src.direction, model=src.model, run=src.run)
            return self._translators[src, stamp]

    def gallery(self, label: str):
        translator = self.translator("identify", label)
        with self._lock:
            if translator not in self._galleries:
                self._galleries[translator] = Gallery(self.gallery_dir, translator=translator, progress=False)
            return self._galleries[translator]

    @guarded(blank=2)
    def translate(self, direction: str, payload, align, label):
        """-> (the crop the model saw, its output, status)."""
        up = upload_of(payload)
        if up is None:
            return None, None, failed(f"upload {'or draw ' if direction == 'sketch2photo' else ''}"
                                      f"a {IN_OUT[direction][0]} first")
        image = read_upload(up)
        crop, how = face_crop(image, align=bool(align), name=up.name)
        translator = self.translator(direction, label)
        out = translator([crop])[0]
        note = (" A greyscale photo: the model was trained on colour photos, so its sketch may be weaker."
                if direction == "photo2sketch" and image.mode == "L" else "")
        return crop, out, _md(f"{IN_OUT[direction][1].capitalize()} of {up.name} by {translator.label}: {how}.{note}")

    @guarded(blank=2)
    def identify(self, payload, align, label, top):
        """-> (contact sheet, [[rank, score, photo]], status)."""
        if self.gallery_dir is None:
            return None, None, failed("start the server with --gallery DIR to identify sketches")
        up = upload_of(payload)
        if up is None:
            return None, None, failed("upload a sketch first")
        crop, how = face_crop(read_upload(up), align=bool(align), name=up.name)
        g = self.gallery(label)
        matches, generated = g.search(crop, top=max(1, min(int(top or 5), TOP_K_MAX)))
        rows = [[m.rank, round(m.score, 4), shown(m.entry.path.relative_to(g.folder))] for m in matches]
        skipped = f", {len(g.skipped)} files skipped" if g.skipped else ""
        return contact_sheet(crop, matches, generated), rows, _md(
            f"{up.name} ({how}) against {len(g.entries)} photos of {shown(g.folder)}{skipped}, compared "
            f"via {g.via} by {g.translator.label}; score: cosine similarity of centred HOG descriptors.")


INTRO = ("# facesketch\nFace photos to pencil sketches and back, by small models trained on CUFS. "
         f"Uploads: at most {MAX_UPLOAD_BYTES // 2**20} MB, 8192 px per side and 40 megapixels. "
         "With \"align face\" the face is found and framed as in CUFS (200x250, eyes level).")


def _run_on(button, fn, inputs, outputs, api_name: str) -> None:
    button.click(fn, inputs, outputs, preprocess=False, api_name=api_name,
                 concurrency_id="model", concurrency_limit=CONCURRENCY)


def _model_menu(gr, h: Handlers, tab: str):
    labels = list(h.choices(tab))
    return gr.Dropdown(labels, value=labels[0] if labels else None, label="model", elem_id=f"{tab}-model")


def _translate_tab(gr, h: Handlers, direction: str):
    photo = direction == "photo2sketch"
    with gr.Row():
        with gr.Column():
            if photo:
                picture = gr.Image(type="filepath", image_mode=None, sources=["upload", "webcam", "clipboard"],
                                   label="face photo", elem_id="photo-in", height=320)
                buttons = [(gr.Button("Make sketch", variant="primary", elem_id="photo-go"), picture)]
            else:
                with gr.Tab("Upload a sketch"):
                    picture = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                       label="sketch", elem_id="sketch-in", height=320)
                    go = gr.Button("Make photo", variant="primary", elem_id="sketch-go")
                with gr.Tab("Draw one"):
                    pad = gr.Sketchpad(value=Image.new("RGB", (400, 500), "white"), type="filepath",
                                       image_mode="RGB", canvas_size=(400, 500), label="draw a face",
                                       brush=gr.Brush(colors=["#202020"], default_color="#202020",
                                                      color_mode="fixed", default_size=3), elem_id="sketch-pad")
                    go_pad = gr.Button("Make photo from the drawing", variant="primary", elem_id="pad-go")
                buttons = [(go, picture), (go_pad, pad)]
            align = gr.Checkbox(photo, label="align face", elem_id=f"{direction}-align",
                                info=None if photo else "drawn sketches are rarely found as faces: leave it off")
            model = _model_menu(gr, h, direction)
        crop = gr.Image(label="what the model saw", format="png", interactive=False, height=320)
        out = gr.Image(label=IN_OUT[direction][1], format="png", interactive=False, height=320,
                       elem_id=f"{direction}-out")
    status = gr.Markdown(elem_id=f"{direction}-status")
    for k, (button, source) in enumerate(buttons):
        _run_on(button, functools.partial(h.translate, direction), [source, align, model], [crop, out, status],
                api_name=direction + ("_drawing" if k else ""))
    return model


def _identify_tab(gr, h: Handlers):
    if h.gallery_dir is None:
        gr.Markdown("Identify ranks a folder of face photos by how well each matches a sketch. Start the "
                    "server with one: `facesketch serve --gallery DIR`.", elem_id="identify-off")
        return None
    gr.Markdown(f"Gallery: `{h.gallery_dir}` (read once per model, at its first search).")
    with gr.Row():
        with gr.Column():
            sketch = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                              label="sketch", elem_id="identify-in", height=320)
            align = gr.Checkbox(True, label="align face")
            top = gr.Slider(1, TOP_K_MAX, value=5, step=1, label="top K")
            model = _model_menu(gr, h, "identify")
            go = gr.Button("Identify", variant="primary", elem_id="identify-go")
        with gr.Column(scale=2):
            sheet = gr.Image(label="best matches", format="png", interactive=False)
            table = gr.Dataframe(headers=["rank", "score", "photo"], datatype=["number", "number", "str"],
                                 interactive=False, elem_id="identify-table")
    status = gr.Markdown(elem_id="identify-status")
    _run_on(go, h.identify, [sketch, align, model, top], [sheet, table, status], api_name="identify")
    return model


def build_app(*, runs_dir: Path | None = None, gallery: Path | None = None):
    """The Blocks app, queued (see the module doc); `launch` or `serve` starts it."""
    gr = _gradio()
    if gallery is not None and not Path(gallery).is_dir():
        raise FacesketchError(f"--gallery {gallery}: not a folder of face photos")
    h = Handlers(runs_dir=runs_dir, gallery=gallery)
    with gr.Blocks(title="facesketch", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        menus = {}
        with gr.Tab("Photo → sketch", id="photo2sketch"):
            menus["photo2sketch"] = _translate_tab(gr, h, "photo2sketch")
        with gr.Tab("Sketch → photo", id="sketch2photo"):
            menus["sketch2photo"] = _translate_tab(gr, h, "sketch2photo")
        with gr.Tab("Identify", id="identify"):
            menus["identify"] = _identify_tab(gr, h)
        menus = {tab: m for tab, m in menus.items() if m is not None}
        demo.load(lambda: [gr.update(choices=list(h.choices(tab))) for tab in menus], None, list(menus.values()))
    return demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)


def launch(demo, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Start `demo` with the upload limit; block=False returns at once (tests)."""
    kwargs = {"max_file_size": MAX_UPLOAD_BYTES} if "max_file_size" in inspect.signature(demo.launch).parameters else {}
    return demo.launch(server_name=host, server_port=port, show_error=False, prevent_thread_lock=not block,
                       quiet=not block, **kwargs)


def serve(*, host: str = "127.0.0.1", port: int = 7860, runs_dir: Path | None = None,
          gallery: Path | None = None) -> None:
    """`facesketch serve`: build the app and serve it until interrupted."""
    launch(build_app(runs_dir=runs_dir, gallery=gallery), host=host, port=port)
