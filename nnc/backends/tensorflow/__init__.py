"""The TensorFlow backend: readable ``tf.Module`` code with nnc's exact semantics.

``emit`` writes a standalone module (tensorflow, numpy and the standard library
only) holding the model classes, the loss, the optimizer written out, a compiled
train step and a ``Runtime``; ``build`` loads it and returns a ready runtime.
Importing this package, or calling ``emit``, never imports TensorFlow.
See ``docs/backends/tensorflow.md`` for how each construct is realised.
"""

from __future__ import annotations

from nnc.backends.tensorflow.build import build, build_gan
from nnc.backends.tensorflow.emit import NAME, emit, emit_gan

__all__ = ["NAME", "build", "build_gan", "emit", "emit_gan"]
