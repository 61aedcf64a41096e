"""The lesson controller: applies a step of the tour to the session and measures it. No widgets.

Applying a step sets the whole state (image, noise, model settings, A/B view), starts the runs
and sweeps the step needs on the session's worker, and, once they have landed, reads the
numbers the window shows into a :class:`~mdn_gui.lessons.Measurement`. The step the user is
on is remembered in the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Signal

from mdn_gui import catalog as cat
from mdn_gui.controllers.analysis import AnalysisController
from mdn_gui.controllers.session import RESULT_LAYERS, SessionController
from mdn_gui.lessons import LESSONS, Lesson, Measurement, lesson_pixel
from mdn_gui.state import MODEL_LAYERS, NETWORK_MODELS, NOISY
from model_core.noise import NoiseSpec
from model_core.weights import training_summary

if TYPE_CHECKING:
    from mdn_gui.controllers.figures import FiguresController

SETTINGS_KEY = "lessons/step"
# The sweeps of lessons 7 and 8, run by the figures controller (the others by the analysis one).
FIGURE_SWEEPS = ("paper-figure", "features")


def weights_line(catalog: cat.ModelCatalog, choice: str) -> str:
    """``masked.safetensors, lite size, trained 3,412 iterations (...)`` for a network choice."""
    path = catalog.path(choice)
    if path is None:
        return ""
    card = cat.read_card(path)
    summary = training_summary(card)
    if summary:
        return f"{path.name}, {summary}"
    if card:
        return f"{path.name} (its model card does not say how far it was trained)"
    return f"{path.name} (no model card, as for official checkpoints: how far it was trained is unknown)"


class LessonController(QObject):
    """Steps through :data:`~mdn_gui.lessons.LESSONS`.

    Signals:
        step_changed (index): a step was applied (0-based).
        measured (index, Measurement): the step's runs and sweeps landed and were measured.
        stale_changed (what): what the user changed since the measurement (``the noise``,
            ``the image``, ``the model settings``; ``""``: the screen is the step's set-up again).
    """

    step_changed = Signal(int)
    measured = Signal(int, object)
    stale_changed = Signal(str)

    def __init__(
        self,
        session: SessionController,
        analysis: AnalysisController,
        settings: QSettings | None = None,
        lessons: tuple[Lesson, ...] = LESSONS,
        parent: QObject | None = None,
        figures: FiguresController | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.analysis, self.settings, self.lessons = session, analysis, settings, lessons
        self.figures = figures
        self.doc = session.doc
        self.remember = True
        self.index = self._remembered()
        self.measurement: Measurement | None = None
        self._waiting: set[str] = set()  # layers whose runs are awaited
        self._sweeps: list[str] = []  # sweeps still to run
        self._pixel: tuple[int, int] | None = None  # the attention probe still to run
        self._probing = False
        self._active = False
        self._measured_on: dict[str, object] | None = None  # the set-up the measurement describes
        self.stale = ""
        for event in (self.doc.noise_changed, self.doc.model_changed, self.doc.source_changed):
            event.connect(lambda *_: self._check_stale())
        session.run_finished.connect(self._run_finished)
        session.run_failed.connect(self._run_failed)
        analysis.sweep_running.connect(self._sweep_running)
        if figures is not None:
            figures.running.connect(self._sweep_running)
        analysis.attention_ready.connect(lambda _view: self._probe_landed())
        analysis.attention_failed.connect(lambda _message: self._probe_landed())

    def _remembered(self) -> int:
        if self.settings is None:
            return 0
        try:
            value = int(self.settings.value(SETTINGS_KEY, 0))
        except (TypeError, ValueError):
            return 0
        return min(max(value, 0), len(self.lessons) - 1)

    @property
    def lesson(self) -> Lesson:
        return self.lessons[self.index]

    @property
    def busy(self) -> bool:
        """Whether the applied step still waits for runs or sweeps."""
        return self._active

    # ------------------------------------------------------------------ stepping

    def next(self) -> None:
        if self.index + 1 < len(self.lessons):
            self.apply(self.index + 1)

    def previous(self) -> None:
        if self.index > 0:
            self.apply(self.index - 1)

    def apply(self, index: int) -> None:
        """Set the whole workbench up for step ``index`` (0-based) and start what it needs.

        Raises:
            IndexError: If there is no such step.
        """
        if not 0 <= index < len(self.lessons):
            raise IndexError(f"there are {len(self.lessons)} lessons, not {index + 1}")
        self.index, self.measurement, self._measured_on = index, None, None
        self._set_stale("")
        if self.remember and self.settings is not None:
            self.settings.setValue(SETTINGS_KEY, index)
        lesson, s = self.lessons[index], self.session
        self._active = False  # what the previous step waited for no longer counts
        self.analysis.cancel_sweep()
        if self.figures is not None:
            for kind in FIGURE_SWEEPS:
                self.figures.cancel(kind)
        s.cancel()
        auto, s.auto_run = s.auto_run, False  # one run per model, started below
        try:
            self._set_state(lesson)
            self._active = True
            self._waiting = set()
            for choice in lesson.runs:
                if not s.catalog.available(choice):
                    continue
                # Awaited before it starts: a run that cannot start ends the step at once, and
                # one that waits for the noisy image (None) still comes.
                self._waiting.add(MODEL_LAYERS[choice])
                ratio = None if choice == lesson.model else self._training_ratio(choice)
                s.run_now(choice, attn_ratio=ratio)
        finally:
            s.auto_run = auto
        self._sweeps = list(lesson.sweeps)
        self._pixel, self._probing = lesson_pixel(lesson, self.doc.image_size), False
        self.step_changed.emit(index)
        self._advance()

    def _training_ratio(self, choice: str) -> float:
        return cat.training_ratio(choice, self.session.catalog.path(choice))

    def _set_state(self, lesson: Lesson) -> None:
        s, doc = self.session, self.doc
        spec = NoiseSpec.parse(lesson.noise)
        noise_changed = doc.update_noise(kind=spec.kind, level=spec.level, seed=lesson.seed)
        model = lesson.model if s.catalog.available(lesson.model) else doc.model.model
        ratio = lesson.attn_ratio
        if ratio is None:
            ratio = self._training_ratio(model) if model in NETWORK_MODELS else 0.0
        s.set_model(
            model=model,
            attn_ratio=ratio,
            input_ratio=lesson.input_ratio,
            passes=lesson.passes,
            seed=lesson.seed,
        )
        if doc.source_name != lesson.sample or doc.source_path is not None or not doc.has_clean:
            s.open_sample(lesson.sample)  # computes the noise too
        elif noise_changed:
            s.refresh_noise()
        # Results the step does not run were made with other settings than those now shown.
        runs = {MODEL_LAYERS[choice] for choice in lesson.runs}
        for key in RESULT_LAYERS:
            if key not in runs:
                doc.remove_layer(key)
        doc.update_view(a=lesson.a, b=lesson.b, mode=lesson.mode)

    # ------------------------------------------------------------------ waiting and measuring

    def _run_finished(self, layer: str) -> None:
        if self._active and layer in self._waiting:
            self._waiting.discard(layer)
            self._advance()

    def _run_failed(self, message: str) -> None:
        if self._active:
            self._complete(f"a run failed: {message}")

    def _sweep_running(self, kind: str, running: bool) -> None:
        if self._active and not running and not self._waiting and kind not in self._sweeps:
            self._advance()

    def _advance(self) -> None:
        """Start the next sweep once the runs are in; measure when nothing is left."""
        if not self._active or self._waiting:
            return
        if self.analysis.sweeping is not None or (self.figures is not None and self.figures.busy()):
            return  # its end calls back here
        if self._sweeps:
            kind = self._sweeps.pop(0)
            if kind in FIGURE_SWEEPS:
                if self.figures is None or self.figures.start(kind) is None:
                    self._complete(f"the {kind} could not start")
                return
            if self.analysis.start_sweep(kind) is None:
                self._complete(f"the {kind} sweep could not start")
            return
        if self._probing:
            return  # the attention probe's end calls back here
        if self._pixel is not None:
            pixel, self._pixel = self._pixel, None
            record = self.doc.records.get(MODEL_LAYERS[self.lesson.model])
            if record is not None and self.analysis.probe_attention(pixel, 0, record) is not None:
                self._probing = True
                return
        self._complete("")

    def _probe_landed(self) -> None:
        """The attention of the step's pixel came (or failed: the step is measured without it)."""
        if self._active and self._probing:
            self._probing = False
            self._advance()

    def _complete(self, error: str) -> None:
        self._active = False
        self._waiting.clear()
        self._sweeps.clear()
        self._pixel, self._probing = None, False
        self.measurement = self.measure(error)
        self._measured_on = self._setup()
        self.measured.emit(self.index, self.measurement)

    # ------------------------------------------------------------------ staleness

    def _setup(self) -> dict[str, object]:
        """What on screen the measured numbers depend on, by the words that name it."""
        doc, model = self.doc, self.doc.model
        return {
            "the image": doc.source_name,
            "the noise": doc.noise,
            "the model settings": (
                model.model, model.attn_ratio, model.input_ratio, model.passes, model.seed
            ),
        }

    def _check_stale(self) -> None:
        if self._measured_on is None or self._active:
            return
        now = self._setup()
        self._set_stale(" and ".join(what for what, value in self._measured_on.items() if now[what] != value))

    def _set_stale(self, what: str) -> None:
        if what != self.stale:
            self.stale = what
            self.stale_changed.emit(what)

    def measure(self, error: str = "") -> Measurement:
        """Read what the document holds now for the applied step."""
        doc, lesson = self.doc, self.lesson
        psnr = {k: doc.metrics[k].psnr for k in (NOISY, "masked", "baseline") if k in doc.metrics}
        m = Measurement(noise=str(NoiseSpec(doc.noise.kind, doc.noise.level)), psnr=psnr, error=error)
        m.weights = {c: weights_line(self.session.catalog, c) for c in ("masked", "baseline")}
        record = doc.records.get(MODEL_LAYERS[lesson.model])
        if record is not None:
            m.passes = lesson.passes
            first = min(record.keep_maps) if record.keep_maps else None
            m.kept = float(record.keep_maps[first].mean()) if first is not None else None
            m.input_kept = float(record.input_keep.mean()) if record.input_keep is not None else None
            m.std_mean = float(record.std.mean() * 255.0) if record.std is not None else None
        if "noise" in lesson.sweeps:
            m.sweep = {name: list(points) for name, points in doc.sweeps["noise"].items()}
        if "attention" in lesson.sweeps:
            m.ratio_sweep = {name: list(points) for name, points in doc.sweeps["attention"].items()}
        if self.figures is not None:
            self._measure_figures(m, lesson)
        return m

    def _measure_figures(self, m: Measurement, lesson: Lesson) -> None:
        """The numbers of the Paper figure and the Features, for the lessons that ran them."""
        figures = self.figures
        assert figures is not None
        if "paper-figure" in lesson.sweeps and figures.paper.complete:
            m.paper = {s: {k: list(v) for k, v in kinds.items()} for s, kinds in figures.paper.points.items()}
            m.paper_pixels, m.paper_source = figures.paper.pixels, figures.paper.source
        if "features" in lesson.sweeps and figures.features_shape is not None:
            m.features = {r.label: r.distance for r in figures.features}
            m.features_pixels = figures.features_shape[0] * figures.features_shape[1]
