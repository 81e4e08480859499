"""A line plot of DVCLive series (textual-plotext), redrawn only when its data changed; also any (label, xs, ys)
lines, such as a metric against a param across experiments."""

from __future__ import annotations

from textual_plotext import PlotextPlot

#: (label, steps, values) of one series.
Series = tuple[str, list[float], list[float]]


class CurvePlot(PlotextPlot):
    """Loss or accuracy against the global step; an empty plot says what it waits for."""

    def __init__(self, title: str, ylim: tuple[float, float] | None = None, xlabel: str = "step", **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.ylim = ylim
        self.xlabel = xlabel
        self.draws = 0  # how many times new data was drawn (the monitor's frame counter)
        self.series: list[Series] = []  # what is drawn now
        self.show([])

    def show(self, series: list[Series], empty: str = "no rows yet") -> None:
        """Draw ``series`` (those with no rows are left out of the legend)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        drawn = self.series = [s for s in series if s[1]]
        for label, steps, values in drawn:
            plt.plot(steps, values, label=label, marker="braille")
        if self.ylim is not None:
            plt.ylim(*self.ylim)
        if not drawn:
            plt.title(f"{self.title}: {empty}")
        self.draws += 1
        self.refresh()
