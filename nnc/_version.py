"""nnc's version, in a module of its own: the code generators, the run folders and
the CLI read it without importing the package's root (which lazily imports the API)."""

__version__ = "0.1.0"
