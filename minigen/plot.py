"""Figures for the lessons: image grids, training curves, 2-D points, densities, latent maps.

Every function draws one figure, saves it as a PNG (creating parent folders)
and returns the path. Inputs may be minigen Tensors (on any device), NumPy or
CuPy arrays. Figures are matplotlib.figure.Figure objects, not pyplot ones,
so nothing stays open and no window appears; on a machine without a display,
importing this module also selects the Agg backend for any later pyplot use.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from minigen import backend
from minigen.autograd import Tensor, no_grad

if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY") and "MPLBACKEND" not in os.environ
        and "matplotlib.pyplot" not in sys.modules):
    matplotlib.use("Agg")  # no display and no backend chosen: a later pyplot draws to files

PathLike = str | os.PathLike


def _to_numpy(x: Any, name: str = "input") -> np.ndarray:
    """A Tensor, CuPy array, NumPy array or list as a NumPy array."""
    if isinstance(x, Tensor):
        return x.numpy()
    if backend.array_device(x) == backend.CUDA:
        return x.get()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected an array or a Tensor, got {type(x).__name__}"
                         ) from error


def _save(fig: Figure, path: PathLike, where: str) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{where}: the path must end in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    return path


def _check_points(points: Any, where: str, name: str = "points") -> np.ndarray:
    points = _to_numpy(points, where)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"{where}: {name} must have shape (N, 2) with N > 0, "
                         f"got {points.shape}")
    return points


def _check_labels(labels: Any, n: int, where: str) -> np.ndarray:
    labels = _to_numpy(labels, where)
    if labels.shape != (n,):
        raise ValueError(f"{where}: labels must have shape ({n},) to match the points, "
                         f"got {labels.shape}")
    return labels


# ---------------------------------------------------------------- images


def make_grid(images: Any, nrow: int = 8, padding: int = 2, pad_value: float = 0.0
              ) -> np.ndarray:
    """Tile images (N, C, H, W) or (N, H, W) into one array (rows, cols, C), nrow per row.

    Like torchvision.utils.make_grid: `padding` pixels of `pad_value` between images.
    C is 1 (grey) or 3 (RGB).
    """
    images = _to_numpy(images, "image_grid")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"image_grid: images must be (N, C, H, W) or (N, H, W), "
                         f"got shape {images.shape}")
    n, channels, height, width = images.shape
    if channels not in (1, 3):
        raise ValueError(f"image_grid: images need 1 (grey) or 3 (RGB) channels, got "
                         f"{channels} in shape {images.shape}")
    if n == 0:
        raise ValueError("image_grid: got no images (N = 0)")
    if nrow < 1:
        raise ValueError(f"image_grid: nrow must be at least 1, got {nrow}")
    columns = min(nrow, n)
    rows = -(-n // columns)
    step_y, step_x = height + padding, width + padding
    grid = np.full((rows * step_y + padding, columns * step_x + padding, channels),
                   pad_value, dtype=np.float32)
    for i, image in enumerate(images):
        y, x = padding + (i // columns) * step_y, padding + (i % columns) * step_x
        grid[y:y + height, x:x + width] = image.transpose(1, 2, 0)
    return grid


def image_grid(images: Any, path: PathLike, nrow: int = 8,
               value_range: tuple[float, float] = (0.0, 1.0), title: str | None = None) -> Path:
    """Save images (N, C, H, W) or (N, H, W) as a grid with `nrow` images per row.

    value_range: the values shown as black and white, (0, 1) or (-1, 1);
    values outside are clipped.
    """
    low, high = value_range
    if not low < high:
        raise ValueError(f"image_grid: value_range must be (low, high) with low < high, "
                         f"got {value_range}")
    images = _to_numpy(images, "image_grid")
    grid = make_grid(images, nrow, pad_value=low)
    grid = (np.clip(grid, low, high) - low) / (high - low)  # to [0, 1]
    # each image at least 64 screen pixels wide, a whole number per pixel so it stays sharp
    scale = -(-64 // max(images.shape[-2:]))
    fig = Figure(figsize=(grid.shape[1] * scale / 100, grid.shape[0] * scale / 100))
    ax = fig.add_axes((0, 0, 1, 1))
    if grid.shape[2] == 1:
        ax.imshow(grid[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    return _save(fig, path, "image_grid")


# ---------------------------------------------------------------- curves


def moving_average(values: Sequence[float], points: int = 100) -> list[float]:
    """A noisy per-step curve (a GAN's losses) as about `points` readable points: the mean
    of each run of k = max(1, len(values) // points) consecutive values, the windows
    side by side (not overlapping); the last one may be shorter."""
    chunk = max(1, len(values) // points)
    return [float(np.mean(values[i:i + chunk])) for i in range(0, len(values), chunk)]


def plot_curves(curves: dict[str, Sequence[float]], path: PathLike, xlabel: str = "epoch",
                ylabel: str = "loss", title: str | None = None) -> Path:
    """Save one line per entry of `curves` (name -> values, e.g. losses per epoch)."""
    if not isinstance(curves, dict) or not curves:
        raise ValueError(f"plot_curves: expected a non-empty dict name -> values, "
                         f"got {type(curves).__name__} {curves!r:.60}")
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for name, values in curves.items():
        values = np.array([_to_numpy(v).item() for v in values], dtype=np.float64)
        if len(values) == 0:
            raise ValueError(f"plot_curves: curve {name!r} has no values")
        ax.plot(np.arange(1, len(values) + 1), values, label=name,
                marker="o" if len(values) < 30 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return _save(fig, path, "plot_curves")


# ---------------------------------------------------------------- 2-D points


def scatter_2d(points: Any, path: PathLike, labels: Any = None,
               class_names: Sequence[str] | None = None, title: str | None = None,
               xlabel: str = "x1", ylabel: str = "x2") -> Path:
    """Save a scatter plot of points (N, 2), coloured by integer `labels` (N,) if given."""
    points = _check_points(points, "scatter_2d")
    fig = Figure(figsize=(6, 6) if labels is None else (7.5, 6))
    ax = fig.add_subplot()
    size = 3 if len(points) > 2000 else 10
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.5)
    else:
        labels = _check_labels(labels, len(points), "scatter_2d")
        classes = np.unique(labels)
        if class_names is not None and not set(classes) <= set(range(len(class_names))):
            raise ValueError(f"scatter_2d: labels must be in 0..{len(class_names) - 1} to "
                             f"index class_names, got {classes.tolist()}")
        for k, c in enumerate(classes):
            chosen = labels == c
            name = class_names[int(c)] if class_names is not None else str(c)
            ax.scatter(points[chosen, 0], points[chosen, 1], s=size, alpha=0.6,
                       color=f"C{k % 10}", label=name)  # C0..C9: matplotlib's 10 colours
        ax.legend(markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    return _save(fig, path, "scatter_2d")


def latent_scatter(z: Any, labels: Any, path: PathLike,
                   class_names: Sequence[str] | None = None,
                   title: str | None = "latent space") -> Path:
    """Save the book's latent-space map: codes z (N, 2) coloured by class `labels` (N,)."""
    z = _check_points(z, "latent_scatter", name="z")
    return scatter_2d(z, path, labels=labels, class_names=class_names, title=title,
                      xlabel="z[0]", ylabel="z[1]")


def _grid_points(xlim: tuple[float, float], ylim: tuple[float, float], resolution: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (R,), y (R,) and every grid point (R * R, 2) float32, row by row in y."""
    xs = np.linspace(*xlim, resolution, dtype=np.float32)
    ys = np.linspace(*ylim, resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], axis=1)


def _evaluate(fn: Callable, grid: np.ndarray, device: str) -> np.ndarray:
    """fn on the grid points as a float32 Tensor on `device`, without recording a graph."""
    with no_grad():
        return _to_numpy(fn(Tensor(grid, device=device)))


def density_2d(log_prob: Callable | Any, path: PathLike,
               xlim: tuple[float, float] = (-3.0, 3.0), ylim: tuple[float, float] = (-3.0, 3.0),
               resolution: int = 100, points: Any = None, show_log: bool = False,
               title: str | None = None, device: str = "cpu") -> Path:
    """Save a heat map of a 2-D density p(x) = exp(log p(x)) over xlim x ylim.

    log_prob: a function from points (M, 2) (a float32 Tensor on `device`) to
    log p (M,), or an array (resolution, resolution) of log p on the grid, row i
    at y = ylim[0] + i (ylim[1] - ylim[0]) / (resolution - 1). show_log draws log p
    instead of p. points (N, 2), if given, are drawn on top (samples, data).
    """
    xs, ys, grid = _grid_points(xlim, ylim, resolution)
    if callable(log_prob):
        values = _evaluate(log_prob, grid, device).reshape(-1)
        if values.shape != (len(grid),):
            raise ValueError(f"density_2d: log_prob returned {values.size} values for "
                             f"{len(grid)} points; expected one per point")
        values = values.reshape(resolution, resolution)
    else:
        values = _to_numpy(log_prob, "density_2d")
        if values.shape != (resolution, resolution):
            raise ValueError(f"density_2d: grid values must have shape ({resolution}, "
                             f"{resolution}) (resolution x resolution), got {values.shape}")
    shown = values if show_log else np.exp(values)
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(xs, ys, shown, shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="log p(x)" if show_log else "p(x)")
    if points is not None:
        points = _check_points(points, "density_2d")
        ax.scatter(points[:, 0], points[:, 1], s=2, color="white", alpha=0.5)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    if title is not None:
        ax.set_title(title)
    return _save(fig, path, "density_2d")


def decision_boundary(predict: Callable, points: Any, labels: Any, path: PathLike,
                      resolution: int = 200, title: str | None = None,
                      device: str = "cpu") -> Path:
    """Save the regions a classifier assigns to each class, with the labelled points on top.

    predict: a function from points (M, 2) (a float32 Tensor on `device`) to class
    scores (M, K), whose argmax is taken, or to class labels (M,).
    """
    points = _check_points(points, "decision_boundary")
    labels = _check_labels(labels, len(points), "decision_boundary")
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.1 * (high - low) + 1e-3
    xs, ys, grid = _grid_points((low[0] - margin[0], high[0] + margin[0]),
                                (low[1] - margin[1], high[1] + margin[1]), resolution)
    predicted = _evaluate(predict, grid, device)
    if predicted.ndim == 2:
        predicted = predicted.argmax(axis=1)
    if predicted.shape != (len(grid),):
        raise ValueError(f"decision_boundary: predict returned shape {predicted.shape} for "
                         f"{len(grid)} points; expected ({len(grid)}, K) scores or "
                         f"({len(grid)},) labels")
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    ax.pcolormesh(xs, ys, predicted.reshape(resolution, resolution), shading="auto",
                  cmap="tab10", vmin=0, vmax=9, alpha=0.3)
    ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", vmin=0, vmax=9, s=8,
               edgecolors="black", linewidths=0.2)
    if title is not None:
        ax.set_title(title)
    return _save(fig, path, "decision_boundary")
