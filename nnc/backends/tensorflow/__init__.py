"""The TensorFlow backend: readable Keras 3 models with nnc's exact semantics.

``emit`` writes a standalone module (keras, tensorflow, numpy and the standard
library only) holding the layer and ``keras.Model`` classes, the loss, the optimizer
written out and ``fit``; ``build`` loads it and returns a ready runtime.
Importing this package, or calling ``emit``, never imports TensorFlow.
See ``docs/backends/tensorflow.md`` for how each construct is realised.
"""

from __future__ import annotations

from nnc.backends.tensorflow.build import build, build_gan
from nnc.backends.tensorflow.emit import NAME, emit, emit_gan

__all__ = ["NAME", "build", "build_gan", "emit", "emit_gan"]
