"""``nnc search``: a recipe's search space run as an Optuna study.

Each trial samples the space of a ``.nn`` file (:mod:`nnc.dsl.space`), writes the
sampled recipe as a plain ``trial.nn`` into its run folder and trains it as
``nnc train`` would (:func:`nnc.train.train`). Its value is the best figure of the
objective (the recipe's early-stopping monitor, ``val_loss`` by default) over its
epochs; each epoch's figure goes to Optuna's pruner, which may stop the trial early.
The study lives in a database (SQLite in the search folder by default), so several
processes can share it and an interrupted search resumes. Optuna is the ``search``
extra (``pip install 'nnc[search]'``).
"""

from __future__ import annotations

from nnc.search.study import SearchOptions, SearchResult, TrialRow, run_search

__all__ = ["SearchOptions", "SearchResult", "TrialRow", "run_search"]
