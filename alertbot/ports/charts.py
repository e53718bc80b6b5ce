"""The chart renderer port: draws a chart spec as a PNG (the adapter lives in alertbot.charts)."""

from __future__ import annotations

from typing import Protocol

from alertbot.domain.charts import ChartSpec, DriversSpec


class ChartRenderError(Exception):
    """A chart could not be drawn; callers fall back to text."""


class ChartRenderer(Protocol):
    """Draws chart specs. Pure CPU work, safe to call from a worker thread and to repeat.

    Raises ChartRenderError when drawing fails (the imaging library is missing or broken).
    """

    def render(self, spec: ChartSpec) -> bytes:
        """The grade-history chart as PNG bytes."""
        ...

    def render_drivers(self, spec: DriversSpec) -> bytes:
        """The key-drivers bar chart as PNG bytes."""
        ...
