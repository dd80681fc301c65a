"""The PNG plots of a test run: confusion matrices and the intent confidence histogram.

matplotlib is an optional extra (`pip install 'trainkit[plot]'`); without it the reports
are written all the same and `plotting_available()` says so. The Agg backend draws
without a display, and each figure is saved to a temp file and renamed into place.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PLOT_EXTRA_HINT = "pip install 'trainkit[plot]'"
HISTOGRAM_BINS = [0.05 * i for i in range(21)]


def plotting_available() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():  # noqa: ANN202 - matplotlib's module type
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        figure.savefig(tmp, format="png", bbox_inches="tight")  # type: ignore[attr-defined]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plot_confusion_matrix(matrix: np.ndarray, labels: Sequence[str], title: str, path: str | Path) -> Path:
    """A confusion matrix (rows: true labels) with each count written in its cell."""
    plt = _pyplot()
    size = max(6.0, 0.45 * len(labels) + 3.0)
    figure, axes = plt.subplots(figsize=(size, size))
    try:
        image = axes.imshow(matrix, interpolation="nearest", cmap="Blues", aspect="auto")
        figure.colorbar(image, ax=axes)
        axes.set_title(title)
        ticks = np.arange(len(labels))
        axes.set_xticks(ticks, labels=list(labels), rotation=90)
        axes.set_yticks(ticks, labels=list(labels))
        axes.set_xlabel("Predicted label")
        axes.set_ylabel("True label")
        threshold = matrix.max() / 2.0 if matrix.size else 0.0
        for i, j in zip(*np.nonzero(matrix), strict=True):
            axes.text(j, i, int(matrix[i, j]), ha="center", va="center",
                      color="white" if matrix[i, j] > threshold else "black")
        return _save(figure, Path(path))
    finally:
        plt.close(figure)


def plot_confidence_histogram(hits: Sequence[float], misses: Sequence[float], path: str | Path) -> Path:
    """Confidences of right and wrong intent predictions, side by side per 0.05 bin."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(10, 6))
    try:
        axes.hist([list(hits), list(misses)], bins=HISTOGRAM_BINS, color=["#009292", "#920000"],
                  label=["hits", "misses"])
        axes.set_xlim(0, 1)
        axes.set_title("Intent Prediction Confidence Distribution")
        axes.set_xlabel("Confidence")
        axes.set_ylabel("Number of Samples")
        axes.legend()
        return _save(figure, Path(path))
    finally:
        plt.close(figure)
