"""Applications over the library: the web demo (``demo/gradio_consistency_models.py``).

- :mod:`.core`: :class:`DemoApp`, the demo's functions on one model, without
  Gradio (testable and usable from Python);
- :mod:`.ui`: :func:`build_demo`, the Gradio page and its API endpoints
  ``/generate`` and ``/edit`` (needs the ``demo`` extra: Gradio).

Nothing in the package imports this layer.
"""
from .core import DemoApp, DemoResult


def build_demo(app: DemoApp, work_dir=None):
    """The Gradio Blocks for ``app`` (see :func:`.ui.build_demo`); imports Gradio."""
    from .ui import build_demo as _build
    return _build(app, work_dir)


__all__ = ['DemoApp', 'DemoResult', 'build_demo']
