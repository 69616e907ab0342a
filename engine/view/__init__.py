"""``raylign view RUN``: a local web page over a run directory (see :mod:`raylign.engine.view.server`)."""
