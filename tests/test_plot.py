"""Tests for minigen.plot: every function writes a valid PNG of sensible size, draws what
it was given, and rejects bad input with a clear ValueError."""
import struct

import matplotlib.image
import numpy as np
import pytest

import minigen
from minigen import plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    raw = path.read_bytes()
    assert raw[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert raw[12:16] == b"IHDR"
    return struct.unpack(">II", raw[16:24])


def assert_sensible_png(path, min_side=100, max_side=3000):
    assert path.is_file()
    width, height = png_size(path)
    assert min_side <= width <= max_side and min_side <= height <= max_side, (width, height)


def centre_grey(path):
    """Grey level in [0, 1] of a PNG's centre pixel."""
    pixels = matplotlib.image.imread(path)
    height, width = pixels.shape[:2]
    return float(pixels[height // 2, width // 2, :3].mean())


# ---------------------------------------------------------------- image_grid


@pytest.mark.parametrize("shape", [(16, 28, 28), (16, 1, 28, 28), (5, 3, 8, 8)])
def test_image_grid_writes_a_png(tmp_path, shape):
    images = np.random.default_rng(0).random(shape)
    path = plot.image_grid(images, tmp_path / "deep" / "er" / "grid.png", nrow=4, title="x")
    assert path == tmp_path / "deep" / "er" / "grid.png"
    assert_sensible_png(path)


def test_image_grid_takes_tensors_on_any_device(tmp_path, device):
    images = minigen.rand(8, 1, 8, 8, device=device)
    assert_sensible_png(plot.image_grid(images, tmp_path / "grid.png", nrow=4))


def test_image_grid_value_range(tmp_path):
    # one image, so the centre of the PNG is the centre of the image:
    # 1 is white in (0, 1); in (-1, 1), 0 is mid-grey and -1 black
    white = plot.image_grid(np.ones((1, 16, 16)), tmp_path / "white.png")
    grey = plot.image_grid(np.zeros((1, 16, 16)), tmp_path / "grey.png", value_range=(-1, 1))
    black = plot.image_grid(-np.ones((1, 16, 16)), tmp_path / "black.png", value_range=(-1, 1))
    clipped = plot.image_grid(np.full((1, 16, 16), 3.0), tmp_path / "clip.png")
    assert centre_grey(white) == 1.0 and centre_grey(clipped) == 1.0
    assert abs(centre_grey(grey) - 0.5) < 0.01
    assert centre_grey(black) == 0.0


def test_make_grid_layout():
    images = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 1, 2, 3))
    grid = plot.make_grid(images, nrow=2, padding=1, pad_value=-1)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 1)  # 3 rows, 2 columns of 2x3 images
    assert np.all(grid[1:3, 1:4] == 0) and np.all(grid[1:3, 5:8] == 1)
    assert np.all(grid[4:6, 1:4] == 2) and np.all(grid[7:9, 1:4] == 4)
    assert np.all(grid[7:9, 5:8] == -1)  # the empty sixth cell
    assert grid[0, 0, 0] == -1


def test_image_grid_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(N, H, W\), got shape \(28, 28\)"):
        plot.image_grid(np.zeros((28, 28)), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"1 \(grey\) or 3 \(RGB\) channels, got 2"):
        plot.image_grid(np.zeros((4, 2, 8, 8)), tmp_path / "a.png")
    with pytest.raises(ValueError, match="low < high"):
        plot.image_grid(np.zeros((4, 8, 8)), tmp_path / "a.png", value_range=(1, 0))
    with pytest.raises(ValueError, match=r"must end in \.png"):
        plot.image_grid(np.zeros((4, 8, 8)), tmp_path / "a.jpg")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- curves and points


def test_plot_curves(tmp_path):
    curves = {"train": [1.0, 0.7, 0.5, 0.45], "val": [minigen.tensor(1.1), 0.8, 0.6, 0.55]}
    path = plot.plot_curves(curves, tmp_path / "loss.png", xlabel="epoch", ylabel="BCE",
                            title="autoencoder")
    assert_sensible_png(path)
    with pytest.raises(ValueError, match="non-empty dict"):
        plot.plot_curves({}, tmp_path / "b.png")
    with pytest.raises(ValueError, match="curve 'val' has no values"):
        plot.plot_curves({"val": []}, tmp_path / "b.png")


def test_moving_average_is_the_mean_of_each_window():
    assert plot.moving_average([1.0, 3.0, 2.0, 4.0, 6.0], points=2) == [2.0, 3.0, 6.0]
    assert plot.moving_average(list(range(1000)), points=100) == [
        float(10 * i + 4.5) for i in range(100)]
    assert plot.moving_average([5.0, 7.0], points=100) == [5.0, 7.0]  # too few to average


def test_scatter_and_latent_scatter(tmp_path):
    rng = np.random.default_rng(0)
    points, labels = rng.normal(size=(300, 2)), rng.integers(0, 10, 300)
    assert_sensible_png(plot.scatter_2d(points, tmp_path / "plain.png"))
    assert_sensible_png(plot.scatter_2d(points, tmp_path / "labelled.png", labels=labels))
    names = [f"class {k}" for k in range(10)]
    z = minigen.tensor(points.astype(np.float32))
    assert_sensible_png(plot.latent_scatter(z, labels, tmp_path / "z.png", class_names=names))


def test_scatter_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"scatter_2d: points must have shape \(N, 2\).*\(5, 3\)"):
        plot.scatter_2d(np.zeros((5, 3)), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\).*\(4,\)"):
        plot.scatter_2d(np.zeros((5, 2)), tmp_path / "a.png", labels=np.zeros(4))
    with pytest.raises(ValueError, match=r"latent_scatter: z must have shape \(N, 2\)"):
        plot.latent_scatter(np.zeros(10), np.zeros(10), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1 to index class_names"):
        plot.latent_scatter(np.zeros((3, 2)), np.array([0, 1, 2]), tmp_path / "a.png",
                            class_names=["a", "b"])


# ---------------------------------------------------------------- densities and classifiers


def standard_normal_log_prob(x):
    """log N(x; 0, I) in 2-D, written with minigen ops."""
    return -0.5 * (x * x).sum(dim=1) - np.log(2 * np.pi)


def test_density_2d_from_a_function_and_from_grid_values(tmp_path, device):
    samples = np.random.default_rng(0).normal(size=(200, 2))
    path = plot.density_2d(standard_normal_log_prob, tmp_path / "p.png", resolution=50,
                           points=samples, device=device, title="N(0, I)")
    assert_sensible_png(path)
    xs = np.linspace(-3, 3, 40)
    log_p = -0.5 * (xs[None, :] ** 2 + xs[:, None] ** 2) - np.log(2 * np.pi)
    assert_sensible_png(plot.density_2d(log_p, tmp_path / "g.png", resolution=40,
                                        show_log=True))


def test_grid_points_run_along_x_within_each_row():
    xs, ys, grid = plot._grid_points((0.0, 1.0), (10.0, 12.0), 3)
    np.testing.assert_array_equal(xs, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(ys, [10.0, 11.0, 12.0])
    assert grid.dtype == np.float32 and grid.shape == (9, 2)
    np.testing.assert_array_equal(grid[3 * 1 + 2], [1.0, 11.0])  # row i = y_i, column j = x_j


def test_density_2d_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"grid values must have shape \(40, 40\).*\(40, 39\)"):
        plot.density_2d(np.zeros((40, 39)), tmp_path / "a.png", resolution=40)
    with pytest.raises(ValueError, match="returned 1 values for 400 points"):
        plot.density_2d(lambda x: x.sum(), tmp_path / "a.png", resolution=20)


def test_decision_boundary(tmp_path, device):
    points = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    labels = (points[:, 0] > 0).astype(np.int64)

    def scores(x):  # class 1 right of the y axis: scores (M, 2)
        return minigen.stack([-x[:, 0], x[:, 0]], dim=1)

    assert_sensible_png(plot.decision_boundary(scores, points, labels, tmp_path / "s.png",
                                               resolution=50, device=device))
    assert_sensible_png(plot.decision_boundary(lambda x: (x[:, 1] > 0).long(), points, labels,
                                               tmp_path / "l.png", resolution=50))
    with pytest.raises(ValueError, match=r"predict returned shape \(\).*2500 points"):
        plot.decision_boundary(lambda x: x.sum(), points, labels, tmp_path / "a.png",
                               resolution=50)
