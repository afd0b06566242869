"""The language server behind ``nnc lsp`` (see :mod:`nnc.lsp.server`)."""
