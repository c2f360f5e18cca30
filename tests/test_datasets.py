"""Tests for minigen.datasets: the IDX reader, the shipped files, transforms, toy data,
text, and the DataLoader.

Each 60,000-image training set is read once (module fixtures); the statistics
checked against it are the published ones (MNIST mean 0.1307, std 0.3081;
Fashion-MNIST mean 0.2860, std 0.3530, 6000 images per class).
"""
import gzip
import os
import shutil

import numpy as np
import pytest

import minigen
from minigen import backend, datasets
from minigen.datasets import (
    FASHION_MNIST_CLASSES,
    CharVocabulary,
    DataLoader,
    data_file,
    load_fashion_mnist,
    load_mnist,
    load_text,
    make_moons,
    pad_to_32,
    quantize,
    read_idx,
    resize,
    standardize,
    to_float,
    to_symmetric,
    to_unit_32,
)

MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="module")
def mnist_train():
    return load_mnist("train")


@pytest.fixture(scope="module")
def fashion_train():
    return load_fashion_mnist("train")


@pytest.fixture
def mnist_test_copy(tmp_path):
    """A data root in tmp_path holding a copy of the two MNIST test files."""
    (tmp_path / "mnist").mkdir()
    for name in MNIST_TEST_FILES:
        shutil.copyfile(datasets.data_root() / "mnist" / name, tmp_path / "mnist" / name)
    return tmp_path


def write_idx(path, array, type_code, compress=False):
    """An IDX file written by hand: magic 0 0 type ndim, big-endian dims, big-endian values."""
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


# ---------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    read_images = read_idx(write_idx(tmp_path / "images", images, 0x08, compress))
    read_labels = read_idx(write_idx(tmp_path / "labels", labels, 0x08, compress))
    assert read_images.dtype == np.uint8 and read_images.shape == (5, 4, 3)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)
    read_images[0, 0, 0] = 7  # the result is a writable array, not a view of the file


def test_read_idx_wider_types_become_native_byte_order(tmp_path):
    values = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1000
    floats = np.linspace(-1, 1, 6).reshape(2, 3)
    read_ints = read_idx(write_idx(tmp_path / "ints", values, 0x0C))
    read_floats = read_idx(write_idx(tmp_path / "floats", floats, 0x0E))
    assert read_ints.dtype == np.int32 and read_ints.dtype.isnative
    np.testing.assert_array_equal(read_ints, values)
    np.testing.assert_array_equal(read_floats, floats)


def test_read_idx_header_of_the_shipped_files():
    labels = read_idx(datasets.data_root() / "mnist" / "t10k-labels-idx1-ubyte.gz")
    raw = gzip.decompress((datasets.data_root() / "mnist" / MNIST_TEST_FILES[0]).read_bytes())
    assert int.from_bytes(raw[:4], "big") == datasets.IDX_IMAGES_MAGIC == 2051
    assert labels.shape == (10000,) and labels.dtype == np.uint8


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "not_idx"
    path.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match=r"not_idx.*bad magic number.*2051.*2049"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 0x07, 1]) + bytes(8))  # unknown type code
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(path)


def test_read_idx_truncated(tmp_path):
    images = np.zeros((4, 5, 5), dtype=np.uint8)
    path = write_idx(tmp_path / "images", images, 0x08)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"images.*truncated.*\(4, 5, 5\)"):
        read_idx(path)
    path.write_bytes(path.read_bytes()[:10])  # inside the header
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(path)
    path.write_bytes(b"\x00")
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.arange(100, dtype=np.uint8), 0x08, True)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"labels\.gz.*gzip"):
        read_idx(path)


# ---------------------------------------------------------------- MNIST and Fashion-MNIST


def test_mnist_train(mnist_train):
    images, labels = mnist_train
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.int64
    assert labels.min() == 0 and labels.max() == 9
    scaled = images / 255.0
    assert abs(scaled.mean() - 0.1307) < 2e-4
    assert abs(scaled.std() - 0.3081) < 2e-4
    assert images.min() == 0 and images.max() == 255


def test_fashion_mnist_train(fashion_train):
    images, labels = fashion_train
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 6000))
    scaled = images / 255.0
    assert abs(scaled.mean() - 0.2860) < 2e-4
    assert abs(scaled.std() - 0.3530) < 2e-4
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"


@pytest.mark.parametrize("load", [load_mnist, load_fashion_mnist])
def test_test_splits(load):
    images, labels = load("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int64
    assert set(np.unique(labels).tolist()) == set(range(10))


def test_bad_split():
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        load_mnist("valid")


def test_corrupt_file_is_rejected(mnist_test_copy):
    path = mnist_test_copy / "mnist" / MNIST_TEST_FILES[1]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit flipped
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz is corrupt") as info:
        load_mnist("test", root=mnist_test_copy)
    message = str(info.value)
    assert "ec29112dd5afa0611ce80d1b7f02629c" in message  # the md5 the publisher gives
    assert "fresh clone" in message and "https://" in message


def test_missing_file_is_named(mnist_test_copy):
    (mnist_test_copy / "mnist" / MNIST_TEST_FILES[0]).unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\.gz is missing") as info:
        load_mnist("test", root=mnist_test_copy)
    assert "9fb629c4189551a2d022fa330f9573f3" in str(info.value)
    assert "fresh clone" in str(info.value)


def test_minigen_data_environment_variable(mnist_test_copy, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MINIGEN_DATA", str(mnist_test_copy))
    images, labels = load_mnist("test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    empty = tmp_path_factory.mktemp("empty")
    monkeypatch.setenv("MINIGEN_DATA", str(empty))
    with pytest.raises(FileNotFoundError, match=str(empty)):
        load_mnist("test")
    images, _ = load_mnist("test", root=mnist_test_copy)  # root= wins over the variable
    assert len(images) == 10000


def test_md5_is_checked_once_per_file(mnist_test_copy, monkeypatch):
    calls = []
    real_md5 = datasets._md5
    monkeypatch.setattr(datasets, "_md5", lambda path: calls.append(path) or real_md5(path))
    name = "mnist/" + MNIST_TEST_FILES[1]
    data_file(name, mnist_test_copy)
    data_file(name, mnist_test_copy)
    assert len(calls) == 1
    path = mnist_test_copy / name  # an edited file is checked again
    raw = path.read_bytes()
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="corrupt"):
        data_file(name, mnist_test_copy)
    assert len(calls) == 2


def test_unknown_data_file():
    with pytest.raises(KeyError, match="unknown data file"):
        data_file("mnist/extra.gz")


# ---------------------------------------------------------------- transforms


def test_to_float_and_to_symmetric():
    x = np.array([[0, 51, 255]], dtype=np.uint8)
    np.testing.assert_allclose(to_float(x), [[0.0, 0.2, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(to_symmetric(x), [[-1.0, 51 / 127.5 - 1, 1.0]], rtol=1e-6)
    assert to_float(x).dtype == np.float32 and to_symmetric(x).dtype == np.float32
    with pytest.raises(TypeError, match="to_float: expected uint8.*float32"):
        to_float(to_float(x))


@pytest.mark.parametrize("shape", [(28, 28), (5, 28, 28), (5, 1, 28, 28)])
def test_pad_to_32(shape):
    x = to_symmetric(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8))
    y = pad_to_32(x, value=-1.0)
    assert y.shape == shape[:-2] + (32, 32) and y.dtype == np.float32
    np.testing.assert_array_equal(y[..., 2:30, 2:30], x)
    border = np.ones((32, 32), dtype=bool)
    border[2:30, 2:30] = False
    assert np.all(y[..., border] == -1.0)
    assert np.all(pad_to_32(x)[..., border] == 0.0)


def test_to_unit_32_is_the_chapter_3_input():
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    y = to_unit_32(x)
    assert y.shape == (5, 1, 32, 32) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0], pad_to_32(to_float(x)))


def test_pad_to_32_wrong_shape():
    with pytest.raises(ValueError, match=r"pad_to_32: expected .*28, 28\).*\(3, 30, 30\)"):
        pad_to_32(np.zeros((3, 30, 30)))


def test_resize_bilinear_reproduces_a_ramp():
    # bilinear interpolation is exact on a linear function; with half-pixel centres
    # output pixel i samples input position (i + 0.5) * 28 / 16 - 0.5
    ramp = np.tile(np.arange(28, dtype=np.float32) * 3.0 + 10.0, (28, 1))  # varies along x
    out = resize(ramp[None], 16)
    expected = ((np.arange(16) + 0.5) * 28 / 16 - 0.5) * 3.0 + 10.0
    assert out.shape == (1, 16, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], np.tile(expected, (16, 1)), rtol=1e-5)
    np.testing.assert_allclose(resize(ramp.T[None], 16)[0], np.tile(expected, (16, 1)).T,
                               rtol=1e-5)


def test_resize_area_is_the_mean_of_covered_pixels():
    # repeating each pixel 16 times makes every output pixel cover exactly 28 x 28
    # fine pixels, so area resizing is a plain block mean of the repeated image
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    fine = x.astype(np.float64).repeat(16, axis=1).repeat(16, axis=2)
    reference = fine.reshape(3, 16, 28, 16, 28).mean(axis=(2, 4))
    out = resize(x, 16, method="area")
    assert out.shape == (3, 16, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-3)


def test_resize_keeps_constants_and_range():
    x = np.full((2, 1, 28, 28), 200, dtype=np.uint8)
    for method in ("bilinear", "area"):
        np.testing.assert_allclose(resize(x, (16, 12), method), 200.0, rtol=1e-6)
    images = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    out = resize(images, 16)
    assert out.min() >= 0 and out.max() <= 255
    with pytest.raises(ValueError, match="method must be 'bilinear' or 'area', got 'cubic'"):
        resize(images, 16, method="cubic")


def test_quantize():
    x = np.arange(256, dtype=np.uint8)
    levels = quantize(x, 4)
    assert levels.dtype == np.int64
    np.testing.assert_array_equal(levels, np.repeat(np.arange(4), 64))
    np.testing.assert_array_equal(quantize(x.astype(np.float32), 4), levels)
    assert quantize(np.array([255.0]), 256)[0] == 255
    with pytest.raises(ValueError, match=r"quantize: expected pixel values in \[0, 256\)"):
        quantize(np.array([256.0]), 4)


def test_pixelcnn_pipeline_on_real_images():
    images, _ = load_fashion_mnist("test")
    levels = quantize(resize(images[:64], 16), 4)
    assert levels.shape == (64, 16, 16)
    assert set(np.unique(levels).tolist()) == {0, 1, 2, 3}


def test_the_batch_transforms_run_where_the_data_are(device, xp):
    """A DataLoader of arrays already on the GPU applies its transform there."""
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    on_device = backend.to_device(images, device)
    for transform in (to_unit_32, lambda x: pad_to_32(to_symmetric(x), value=-1.0),
                      lambda x: resize(x, 16), lambda x: resize(x, (16, 12), "area"),
                      lambda x: quantize(x, 4), lambda x: quantize(resize(x, 16), 4)):
        result = transform(on_device)
        assert isinstance(result, xp.ndarray)
        np.testing.assert_allclose(backend.to_device(result, "cpu"), transform(images),
                                   rtol=1e-6, atol=1e-6)
    batches = list(DataLoader(on_device, batch_size=4, device=device, transform=to_unit_32))
    assert [b.shape for b in batches] == [(4, 1, 32, 32), (2, 1, 32, 32)]
    assert batches[0].device == device


# ---------------------------------------------------------------- toy 2-D data


def test_make_moons_shapes_and_reproducible():
    points, labels = make_moons(301, noise=0.05, seed=3)
    assert points.shape == (301, 2) and points.dtype == np.float32
    assert labels.shape == (301,) and labels.dtype == np.int64
    assert (labels == 0).sum() == 150 and (labels == 1).sum() == 151
    again, again_labels = make_moons(301, noise=0.05, seed=3)
    np.testing.assert_array_equal(points, again)
    np.testing.assert_array_equal(labels, again_labels)
    other, _ = make_moons(301, noise=0.05, seed=4)
    assert not np.array_equal(points, other)


def test_make_moons_without_noise_lies_on_the_half_circles():
    points, labels = make_moons(200, noise=0.0, seed=0)
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    upper, lower = labels == 0, labels == 1
    np.testing.assert_allclose(x[upper] ** 2 + y[upper] ** 2, 1.0, atol=1e-6)
    assert np.all(y[upper] >= -1e-6)
    np.testing.assert_allclose((x[lower] - 1) ** 2 + (y[lower] - 0.5) ** 2, 1.0, atol=1e-6)
    assert np.all(y[lower] <= 0.5 + 1e-6)
    assert not np.all(np.diff(labels) >= 0)  # shuffled
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_moons(10, noise=-1.0)


def test_standardize():
    points, _ = make_moons(1000, noise=0.05, seed=0)
    z = standardize(points)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-5)
    constant = standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_array_equal(constant, [[-1.0, 0.0], [1.0, 0.0]])


# ---------------------------------------------------------------- text


def test_tiny_shakespeare_and_vocabulary():
    text = load_text()
    assert len(text) == 1115394 and text.startswith("First Citizen:")
    vocab = CharVocabulary(text)
    assert len(vocab) == len(set(text)) and vocab.chars == sorted(vocab.chars)
    ids = vocab.encode(text[:1000])
    assert ids.dtype == np.int64 and ids.shape == (1000,)
    assert vocab.decode(ids) == text[:1000]
    assert vocab.decode(minigen.tensor(ids[:5])) == text[:5]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("~")
    with pytest.raises(ValueError, match="ids must be in"):
        vocab.decode([len(vocab)])


# ---------------------------------------------------------------- DataLoader


def test_dataloader_batches(device):
    images = np.arange(10 * 4, dtype=np.uint8).reshape(10, 2, 2)
    labels = np.arange(10)
    loader = DataLoader((images, labels), batch_size=4, device=device, transform=to_float)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert isinstance(x, minigen.Tensor) and x.shape == (4, 2, 2)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.device == device and y.device == device
    np.testing.assert_allclose(x.numpy(), images[:4] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in batches]), labels)
    assert not x.requires_grad


def test_dataloader_drop_last_and_single_array(device):
    data = np.linspace(0, 1, 10)
    loader = DataLoader(data, batch_size=4, drop_last=True, device=device)
    assert len(loader) == 2
    batches = list(loader)
    assert len(batches) == 2 and all(isinstance(b, minigen.Tensor) for b in batches)
    assert all(b.shape == (4,) and b.dtype == np.float32 for b in batches)
    assert len(DataLoader(data, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(data, batch_size=11, drop_last=True)) == 0


def test_dataloader_shuffle_is_reproducible_and_new_each_epoch():
    data = np.arange(50)

    def epoch(loader):
        return np.concatenate([b.numpy() for b in loader])

    first, second = DataLoader(data, 8, shuffle=True, seed=1), DataLoader(data, 8, shuffle=True,
                                                                          seed=1)
    epoch_1, epoch_2 = epoch(first), epoch(first)
    np.testing.assert_array_equal(np.sort(epoch_1), data)  # each epoch is a permutation
    np.testing.assert_array_equal(np.sort(epoch_2), data)
    assert not np.array_equal(epoch_1, epoch_2)
    assert not np.array_equal(epoch_1, data)
    np.testing.assert_array_equal(epoch(second), epoch_1)
    np.testing.assert_array_equal(epoch(second), epoch_2)
    assert not np.array_equal(epoch(DataLoader(data, 8, shuffle=True, seed=2)), epoch_1)
    minigen.manual_seed(5)
    unseeded = epoch(DataLoader(data, 8, shuffle=True))
    minigen.manual_seed(5)
    np.testing.assert_array_equal(epoch(DataLoader(data, 8, shuffle=True)), unseeded)
    minigen.manual_seed(5)
    DataLoader(data, 8)  # a loader that does not shuffle leaves minigen's generator alone
    np.testing.assert_array_equal(epoch(DataLoader(data, 8, shuffle=True)), unseeded)


def test_dataloader_transform_sees_only_batches(mnist_train):
    images, labels = mnist_train
    seen = []

    def transform(x):
        seen.append(x.shape)
        return pad_to_32(to_symmetric(x), value=-1.0)[:, None]

    loader = DataLoader((images, labels), batch_size=128, shuffle=True, seed=0,
                        transform=transform)
    batches = iter(loader)
    for _ in range(3):
        x, y = next(batches)
    assert seen == [(128, 28, 28)] * 3
    assert x.shape == (128, 1, 32, 32) and x.dtype == np.float32 and y.shape == (128,)
    assert x.numpy().min() == -1.0 and x.numpy().max() <= 1.0
    assert len(loader) == 469


def test_dataloader_map_style_dataset():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float64), i % 2

    batches = list(DataLoader(Squares(), batch_size=2))
    assert len(batches) == 3
    x, y = batches[1]
    np.testing.assert_array_equal(x.numpy(), [[2, 4], [3, 9]])
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y.numpy(), [0, 1])


def test_dataloader_bad_input():
    with pytest.raises(ValueError, match=r"equal length, got lengths \[10, 9\]"):
        DataLoader((np.zeros(10), np.zeros(9)), batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        DataLoader(np.zeros(10), batch_size=0)
    with pytest.raises(TypeError, match="expected an array, a tuple of arrays or a dataset"):
        DataLoader(42, batch_size=2)
