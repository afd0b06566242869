"""TensorBoard logs of a run, written into its run folder.

- every epoch: each figure of the history row (``loss``, ``val_loss``, metrics, ``lr``,
  ``time``; a GAN's ``d_loss``, ``g_loss``, ...), at step = the 1-based epoch;
- every ``histogram_every`` epochs and at the last: a histogram of every weight
  (``weights/dense_1.weight``) and, for supervised recipes, of its gradient on a fixed
  batch of up to 256 training samples (``gradients/...``, from ``runtime.gradients``);
  pictures of a GAN's samples or an autoencoder's reconstructions at the same epochs;
- at the start: the network graph (from the IR, so on every backend) and the recipe
  as text; at the end: ``loss.png`` as an image.

``tensorboard --logdir runs`` then shows every run folder as a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nnc.train.tracking.callbacks import Callback, RunContext
from nnc.train.tracking.events import EventWriter, encode_png, png_size
from nnc.train.tracking.graph import graph_def

if TYPE_CHECKING:
    from nnc.train.loop import TrainResult

GRADIENT_SAMPLES = 256


def default_histogram_every(epochs: int) -> int:
    """About ten histograms a run: every epoch up to 10 epochs, every epochs/10 beyond."""
    return max(1, epochs // 10)


class TensorBoardCallback(Callback):
    def __init__(self, histogram_every: int | None = None):
        self.histogram_every = histogram_every
        self.writer: EventWriter | None = None
        self.context: RunContext | None = None
        self.every = 1
        self.batch: tuple[np.ndarray, np.ndarray] | None = None

    def on_train_begin(self, context: RunContext) -> None:
        if context.run_dir is None:
            return
        self.context = context
        self.every = self.histogram_every or default_histogram_every(context.epochs)
        self.writer = EventWriter(context.run_dir)
        if context.data is not None:
            train = context.data.train
            self.batch = (train.x[:GRADIENT_SAMPLES], train.y[:GRADIENT_SAMPLES])
        self.writer.graph(graph_def(context.program, context.models))
        if context.recipe_text:
            # Markdown: indented by four spaces, the text shows as it is written.
            quoted = "\n".join("    " + line for line in context.recipe_text.splitlines())
            self.writer.text(context.first_epoch, "recipe", quoted)
        self.writer.flush()

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], runtime: Any) -> None:
        if self.writer is None or self.context is None:
            return
        self.writer.scalars(epoch, {k: float(v) for k, v in row.items() if k != "epoch"})
        if epoch % self.every == 0 or epoch == self.context.epochs:
            self._histograms(epoch, runtime)
            self._pictures(epoch, runtime)
        self.writer.flush()

    def on_train_end(self, result: TrainResult | None) -> None:
        if self.writer is None:
            return
        try:
            if result is not None:
                epoch = int(result.history[-1]["epoch"]) if result.history else 0
                for path in result.files:
                    if path.suffix == ".png":
                        png = path.read_bytes()
                        height, width = png_size(png)
                        self.writer.image(epoch, f"plots/{path.stem}", png, height, width)
        finally:
            self.writer.close()

    def _histograms(self, epoch: int, runtime: Any) -> None:
        assert self.writer is not None
        weights = runtime.get_weights()
        self.writer.histograms(epoch, {f"weights/{k}": v for k, v in weights.items()})
        if self.batch is not None and hasattr(runtime, "gradients"):
            gradients = runtime.gradients(*self.batch)
            self.writer.histograms(epoch, {f"gradients/{k}": v for k, v in gradients.items()})

    def _pictures(self, epoch: int, runtime: Any) -> None:
        assert self.writer is not None and self.context is not None
        if self.context.pictures is None:
            return
        for tag, pixels in self.context.pictures(runtime).items():
            png, height, width = encode_png(pixels)
            self.writer.image(epoch, f"pictures/{tag}", png, height, width)
