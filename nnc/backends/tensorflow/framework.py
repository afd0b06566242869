"""How nnc imports TensorFlow: the one place that sets how it computes.

- **float32 means float32.** TensorFlow enables TensorFloat-32 by default, which
  rounds the inputs of matmuls and convolutions to 10 mantissa bits on hardware that
  has it (Ampere GPUs and later). nnc's semantics are float32 throughout, so
  :func:`import_tensorflow` turns it off.
- **oneDNN stays as TensorFlow ships it** (on for x86-64 Linux builds), or as the
  ``TF_ENABLE_ONEDNN_OPTS`` environment variable says. Its kernels sum in orders
  that depend on the processor; nnc does not rely on any order: ``nnc verify`` and
  the equivalence tests allow each tensor what its own conditioning explains
  (docs/semantics.md, "Tolerances"), and the one wrong result oneDNN was found to
  compute (a one-channel convolution with a larger stride across than down) is
  worked around in the layer that meets it. Turning oneDNN off costs about half of
  TensorFlow's convolution speed on this project's machines (docs/backends/tensorflow.md).
- **No start-up notices.** TensorFlow's import writes its C++ start-up notices
  (oneDNN is on, the CPU features it was built for; six lines) straight to the
  process's standard error, before its logging is set up, so
  ``TF_CPP_MIN_LOG_LEVEL`` does not reach them. Unless ``TF_CPP_MIN_LOG_LEVEL`` is
  ``0`` (show everything), the import runs with standard error captured, and every
  line but those notices is written back; later INFO lines are hidden
  (``TF_CPP_MIN_LOG_LEVEL=1`` unless set), warnings and errors still show.

The settings read from the environment take effect only if TensorFlow is not yet
imported when nnc first imports it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

QUIET_LOG_LEVEL = "1"  # TensorFlow's C++ log: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR
START_UP_NOTICES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} [\d:. ]+\d+ (port|cpu_feature_guard)\.cc:\d+\]"
    r"|To enable the following instructions: .*rebuild TensorFlow"
)


def import_tensorflow() -> ModuleType:
    """TensorFlow, configured as nnc runs it (see the module's docstring)."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)
        if os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() != "0":
            with _without_start_up_notices():
                import tensorflow  # noqa: F401  (imported here for its start-up output)
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    return tf


def onednn_setting() -> str:
    """How TensorFlow's oneDNN kernels are set in this process, for run records:
    ``"on"``, ``"off"`` or ``"default"`` (TensorFlow's own choice: on for x86-64)."""
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is None:
        return "default"
    return "off" if value.strip().lower() in ("0", "false") else "on"


@contextmanager
def _without_start_up_notices() -> Iterator[None]:
    """Capture the process's standard error (file descriptor 2) and write back every
    line but TensorFlow's start-up notices."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [ln for ln in text.splitlines(keepends=True) if not START_UP_NOTICES.match(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
