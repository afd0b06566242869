"""TensorBoard event files, written with TensorBoard's own protocol buffers.

An event file is a sequence of records (length, CRC, an ``Event`` message, CRC), the
TFRecord framing that ``tensorboard.summary.writer.record_writer`` writes. TensorBoard's
``EventFileWriter`` would do the same through ``tf.io.gfile``, which imports all of
TensorFlow (seconds) wherever TensorFlow is installed; this writer opens the file
itself, so the NumPy backend writes logs without TensorFlow or PyTorch. It needs the
``tensorboard`` package (``pip install 'nnc[track]'``), imported when a run starts.

Scalars are written as float64 tensors with the scalars plugin's metadata (so a
figure reads back exactly as ``history.json`` holds it), histograms as the
histograms plugin's ``[k, 3]`` tensors of (left edge, right edge, count), images as
PNG ``Summary.Image`` values, and text with the text plugin's metadata.
"""

from __future__ import annotations

import io
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

HISTOGRAM_BUCKETS = 30


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


class EventWriter:
    """Appends events to a new event file in ``folder`` (one file per run or resume)."""

    def __init__(self, folder: Path, suffix: str = ""):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
        from tensorboard.util import tensor_util

        self._event_pb2, self._summary_pb2, self._tensor_util = event_pb2, summary_pb2, tensor_util
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
        self.path = folder / (name + suffix)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._records = RecordWriter(self._file)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    # -- summaries -------------------------------------------------------------------

    def scalars(self, step: int, values: dict[str, float]) -> None:
        from tensorboard.plugins.scalar import metadata

        summary = self._summary_pb2.Summary()
        for tag, value in values.items():
            summary.value.add(
                tag=tag,
                metadata=metadata.create_summary_metadata(display_name=tag, description=""),
                tensor=self._tensor_util.make_tensor_proto(np.float64(value)),
            )
        self._summary(step, summary)

    def histograms(self, step: int, arrays: dict[str, np.ndarray]) -> None:
        from tensorboard.plugins.histogram import metadata

        summary = self._summary_pb2.Summary()
        for tag, array in arrays.items():
            summary.value.add(
                tag=tag,
                metadata=metadata.create_summary_metadata(display_name=tag, description=""),
                tensor=self._tensor_util.make_tensor_proto(histogram_buckets(array)),
            )
        self._summary(step, summary)

    def image(self, step: int, tag: str, png: bytes, height: int, width: int) -> None:
        summary = self._summary_pb2.Summary()
        channels = self._summary_pb2.Summary.Image(
            height=height, width=width, colorspace=png_colorspace(png), encoded_image_string=png
        )
        summary.value.add(tag=tag, image=channels)
        self._summary(step, summary)

    def text(self, step: int, tag: str, text: str) -> None:
        from tensorboard.plugins.text import metadata

        summary = self._summary_pb2.Summary()
        summary.value.add(
            tag=tag,
            metadata=metadata.create_summary_metadata(display_name=tag, description=""),
            tensor=self._tensor_util.make_tensor_proto(
                np.array(text.encode("utf-8"), dtype=object)
            ),
        )
        self._summary(step, summary)

    def graph(self, graph_def: Any) -> None:
        """A ``GraphDef`` (the graphs dashboard draws it)."""
        event = self._event_pb2.Event(
            wall_time=time.time(), graph_def=graph_def.SerializeToString()
        )
        self._write(event)

    # -- the file ----------------------------------------------------------------------

    def flush(self) -> None:
        if not self._file.closed:
            self._records.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._records.close()

    def _summary(self, step: int, summary: Any) -> None:
        self._write(self._event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())


def histogram_buckets(array: np.ndarray, buckets: int = HISTOGRAM_BUCKETS) -> np.ndarray:
    """``[buckets, 3]`` rows of (left edge, right edge, count) over the finite values,
    equal-width between their minimum and maximum, as TensorBoard's histograms plugin
    reads them (all values equal: every edge at that value, all in the last bucket).

    >>> histogram_buckets(np.array([0.0, 1.0, 1.0, 2.0]), buckets=2).tolist()
    [[0.0, 1.0, 1.0], [1.0, 2.0, 3.0]]
    """
    values = np.asarray(array, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros((buckets, 3))
    low, high = float(values.min()), float(values.max())
    if low == high:
        rows = np.zeros((buckets, 3))
        rows[:, :2] = low
        rows[-1, 2] = values.size
        return rows
    counts, edges = np.histogram(values, bins=buckets, range=(low, high))
    return np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)


def encode_png(pixels: np.ndarray) -> tuple[bytes, int, int]:
    """Grey ``[H, W]`` or colour ``[H, W, 3]`` pixels in [0, 1] as PNG bytes (Pillow
    comes with TensorBoard), with the image's height and width."""
    from PIL import Image

    levels = np.clip(np.round(np.asarray(pixels, dtype=np.float64) * 255.0), 0, 255).astype(
        np.uint8
    )
    image = Image.fromarray(levels, mode="L" if levels.ndim == 2 else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), int(levels.shape[0]), int(levels.shape[1])


def png_size(png: bytes) -> tuple[int, int]:
    """(height, width) of a PNG file, read from its header."""
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    return height, width


def png_colorspace(png: bytes) -> int:
    """TensorBoard's colorspace code (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) from the
    PNG header's colour type."""
    colour_type = png[25] if len(png) > 25 else 2
    return {0: 1, 4: 2, 2: 3, 6: 4, 3: 3}.get(colour_type, 3)
