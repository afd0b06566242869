"""The ``nnc`` command line. One module per command; ``main`` wires them up."""
