"""Datasets: the IDX reader, MNIST and Fashion-MNIST, the book's transforms, toy 2-D data,
tiny Shakespeare, and a DataLoader that serves mini-batches of Tensors.

    images, labels = load_fashion_mnist("train")        # uint8 (60000, 28, 28), int64 (60000,)
    loader = DataLoader((images, labels), batch_size=100, shuffle=True, seed=0,
                        transform=lambda x: pad_to_32(to_float(x))[:, None])
    for x, y in loader: ...                              # x: (100, 1, 32, 32) float32 Tensor

The data files live in the repository's data/ folder (a fresh clone ships them),
exactly as their publishers distribute them; each is checked against its md5 on
first use. Set the MINIGEN_DATA environment variable, or pass root=, to read
them from elsewhere (the same layout: <root>/mnist/, <root>/fashion-mnist/, ...).
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from minigen import backend
from minigen.autograd import Tensor

# ---------------------------------------------------------------- where the files are

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# md5 of each file as its publisher distributes it (for the .gz files: of the
# compressed bytes). data/README.md gives sizes, sha256 values and sources.
MD5 = {
    "mnist/train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "mnist/train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "mnist/t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "mnist/t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "fashion-mnist/train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    "tinyshakespeare/input.txt": "6fb458f1232090904fb40fe944165e91",
}

# Other copies of the files, for a learner without the repository's data/ folder.
_MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "tinyshakespeare": "https://raw.githubusercontent.com/karpathy/char-rnn/master/"
                       "data/tinyshakespeare/",
}

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}

# path -> (size, mtime) of each file whose md5 was checked in this process
_verified: dict[str, tuple[int, int]] = {}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: `root` if given, else $MINIGEN_DATA, else the repository's data/."""
    if root is not None:
        return Path(root)
    if os.environ.get("MINIGEN_DATA"):
        return Path(os.environ["MINIGEN_DATA"])
    return Path(__file__).resolve().parent.parent / "data"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_get(name: str, path: Path) -> str:
    folder, filename = name.split("/")
    return (f"minigen ships it in data/{name}: a fresh clone of the repository has it "
            f"(or restore it with `git checkout -- data/`), or download {filename} from "
            f"{_MIRRORS[folder]} into {path.parent}; data/README.md says where the files "
            "come from. Set MINIGEN_DATA or pass root= to read them from another folder.")


def data_file(name: str, root: str | os.PathLike | None = None) -> Path:
    """The path of shipped data file `name` (a key of MD5), its md5 checked once per process.

    A missing file raises FileNotFoundError, a wrong md5 ValueError; both name
    the file, its expected md5 and how to get it.
    """
    if name not in MD5:
        raise KeyError(f"data_file: unknown data file {name!r}; known files: {sorted(MD5)}")
    path = data_root(root) / name
    expected = MD5[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"data file {path} is missing (expected md5 {expected}). "
            + _how_to_get(name, path))
    stat = path.stat()
    key = str(path.resolve())
    if _verified.get(key) != (stat.st_size, stat.st_mtime_ns):
        actual = _md5(path)
        if actual != expected:
            raise ValueError(
                f"data file {path} is corrupt: its md5 is {actual}, expected {expected}. "
                + _how_to_get(name, path))
        _verified[key] = (stat.st_size, stat.st_mtime_ns)
    return path


# ---------------------------------------------------------------- the IDX format

# IDX: magic = 0x00 0x00 <type code> <number of dims>, then each dim as a
# big-endian uint32, then the values, big-endian, in C order.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dims (count, rows, cols)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dim (count)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) into a NumPy array in native byte order.

    MNIST images (magic 2051) come out as uint8 (N, 28, 28), labels (magic 2049) as uint8 (N,).
    A bad magic number or a truncated file raises ValueError naming the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # the gzip signature
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise ValueError(f"{path}: broken or truncated gzip stream ({error})") from error
    return _parse_idx(raw, path)


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file, {len(raw)} bytes is shorter than the "
                         "4-byte magic number")
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or type_code not in _IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{path}: not an IDX file, bad magic number {magic} (0x{magic:08x}); expected "
            f"{IDX_IMAGES_MAGIC} for images or {IDX_LABELS_MAGIC} for labels (two zero bytes, "
            "a type code 0x08-0x0e, the number of dimensions)")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{path}: truncated IDX header, {len(raw)} bytes for {ndim} dims "
                         f"that need {header_size}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    body = len(raw) - header_size
    if body != expected:
        problem = "truncated IDX file" if body < expected else "IDX file with trailing bytes"
        raise ValueError(f"{path}: {problem}: the header says shape {shape} of {dtype.name}, "
                         f"{expected} bytes of data, but the file holds {body}")
    values = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


# ---------------------------------------------------------------- MNIST and Fashion-MNIST


def _load_idx_pair(folder: str, split: str, root) -> tuple[np.ndarray, np.ndarray]:
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"load {folder}: split must be 'train' or 'test', got {split!r}")
    prefix = _SPLIT_PREFIX[split]
    image_path = data_file(f"{folder}/{prefix}-images-idx3-ubyte.gz", root)
    label_path = data_file(f"{folder}/{prefix}-labels-idx1-ubyte.gz", root)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{image_path} and {label_path}: expected images (N, H, W) and "
                         f"labels (N,), got {images.shape} and {labels.shape}")
    return images, labels.astype(np.int64)


def load_mnist(split: str = "train",
               root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits: images uint8 (N, 28, 28) in 0..255 and labels int64 (N,) in 0..9.

    split: 'train' (N = 60000) or 'test' (N = 10000).
    """
    return _load_idx_pair("mnist", split, root)


def load_fashion_mnist(split: str = "train",
                       root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST: images uint8 (N, 28, 28), labels int64 (N,); names in FASHION_MNIST_CLASSES.

    split: 'train' (N = 60000) or 'test' (N = 10000).
    """
    return _load_idx_pair("fashion-mnist", split, root)


# ---------------------------------------------------------------- transforms
# On NumPy arrays, or on CuPy ones when the data already live on the GPU (a DataLoader
# applies its transform to each gathered batch, on the data's device).


def _check_uint8(name: str, x: np.ndarray) -> None:
    if x.dtype != np.uint8:
        raise TypeError(f"{name}: expected uint8 pixels in 0..255, got dtype {x.dtype}")


def to_float(x: np.ndarray) -> np.ndarray:
    """Pixels 0..255 to float32 in [0, 1]: x / 255 (the book's autoencoder and VAE)."""
    _check_uint8("to_float", x)
    return x.astype(np.float32) / np.float32(255)


def to_symmetric(x: np.ndarray) -> np.ndarray:
    """Pixels 0..255 to float32 in [-1, 1]: x / 127.5 - 1 (the book's GANs, EBM)."""
    _check_uint8("to_symmetric", x)
    return x.astype(np.float32) / np.float32(127.5) - np.float32(1)


def pad_to_32(x: np.ndarray, value: float = 0.0) -> np.ndarray:
    """Pad 28x28 images to 32x32: 2 pixels of `value` on each side.

    Use value=0 for images in [0, 1] and value=-1 for images in [-1, 1], so the
    border is black either way. x: (..., 28, 28) -> (..., 32, 32).
    """
    if x.ndim < 2 or x.shape[-2:] != (28, 28):
        raise ValueError(f"pad_to_32: expected images of shape (..., 28, 28), got {x.shape}")
    widths = [(0, 0)] * (x.ndim - 2) + [(2, 2), (2, 2)]
    xp = backend.get_array_module(x)
    return xp.pad(x, widths, mode="constant", constant_values=value)


def to_unit_32(images: np.ndarray) -> np.ndarray:
    """The book's chapter 3 input: uint8 (N, 28, 28) -> float32 (N, 1, 32, 32) in [0, 1]."""
    return pad_to_32(to_float(images))[:, None]


def _bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of bilinear interpolation with half-pixel centres.

    Output pixel i samples the input at s = (i + 0.5) n_in / n_out - 0.5 and
    mixes its two neighbours floor(s) and floor(s) + 1 (tf.image.resize's rule).
    """
    source = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    source = np.clip(source, 0, n_in - 1)
    below = np.floor(source).astype(np.int64)
    above = np.minimum(below + 1, n_in - 1)
    fraction = source - below
    weights = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(weights, (rows, below), 1 - fraction)
    np.add.at(weights, (rows, above), fraction)
    return weights


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of area averaging.

    Output pixel i covers [i s, (i + 1) s) in input coordinates, s = n_in / n_out,
    and averages the input pixels [j, j + 1) weighted by how much of each it covers.
    """
    scale = n_in / n_out
    start = np.arange(n_out)[:, None] * scale
    j = np.arange(n_in)[None, :]
    overlap = np.minimum(j + 1, start + scale) - np.maximum(j, start)
    return np.maximum(overlap, 0) / scale


def resize(x: np.ndarray, size: int | tuple[int, int] = 16,
           method: str = "bilinear") -> np.ndarray:
    """Resize images (..., H, W) to (..., h, w); float32 out for integer pixels.

    Resizing is linear along each axis, so it is two matrix products:
    out = A_h @ x @ A_w^T with A of shape (h, H). method 'bilinear' matches
    tf.image.resize, which the book's PixelCNN uses to go from 28 to 16 pixels
    (no antialiasing); 'area' averages the pixels each output pixel covers.
    """
    weights_for = {"bilinear": _bilinear_weights, "area": _area_weights}
    if method not in weights_for:
        raise ValueError(f"resize: method must be 'bilinear' or 'area', got {method!r}")
    if x.ndim < 2:
        raise ValueError(f"resize: expected images of shape (..., H, W), got {x.shape}")
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"resize: the size must be positive, got {size}")
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    xp = backend.get_array_module(x)  # the small weight matrices go where the images are
    rows = xp.asarray(weights_for[method](x.shape[-2], height).astype(dtype))
    cols = xp.asarray(weights_for[method](x.shape[-1], width).astype(dtype))
    return rows @ x.astype(dtype, copy=False) @ cols.T


def quantize(x: np.ndarray, levels: int = 4) -> np.ndarray:
    """Pixel values in [0, 256) to int64 levels 0..levels-1: floor(x levels / 256).

    The book's PixelCNN uses 4 levels: 0..63 -> 0, 64..127 -> 1, 128..191 -> 2, 192..255 -> 3.
    """
    if levels < 2 or levels > 256:
        raise ValueError(f"quantize: levels must be in 2..256, got {levels}")
    if x.size and bool(((x < 0) | (x >= 256)).any()):  # one read, on a GPU
        raise ValueError(f"quantize: expected pixel values in [0, 256), got values in "
                         f"[{x.min()}, {x.max()}]")
    scaled = x.astype(np.int64) * levels if x.dtype.kind in "iub" else x * levels
    return backend.get_array_module(x).floor_divide(scaled, 256).astype(np.int64)


# ---------------------------------------------------------------- toy 2-D data


def make_moons(n: int = 100, noise: float = 0.0, seed: int | None = None,
               shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's construction), for RealNVP.

    Upper moon (label 0): (cos t, sin t); lower moon (label 1): (1 - cos t, 0.5 - sin t),
    t evenly spaced in [0, pi]; then Gaussian noise of std `noise` on every coordinate.
    Returns points float32 (n, 2) and labels int64 (n,), n // 2 of them 0.
    """
    if n < 2:
        raise ValueError(f"make_moons: n must be at least 2, got {n}")
    if noise < 0:
        raise ValueError(f"make_moons: noise must be >= 0, got {noise}")
    generator = np.random.default_rng(seed)
    n_upper = n // 2
    n_lower = n - n_upper
    t_upper = np.linspace(0, np.pi, n_upper)
    t_lower = np.linspace(0, np.pi, n_lower)
    upper = np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1)
    lower = np.stack([1 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1)
    points = np.concatenate([upper, lower])
    labels = np.concatenate([np.zeros(n_upper, np.int64), np.ones(n_lower, np.int64)])
    if shuffle:
        order = generator.permutation(n)
        points, labels = points[order], labels[order]
    if noise > 0:
        points = points + generator.normal(scale=noise, size=points.shape)
    return points.astype(np.float32), labels


def standardize(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """(x - mean) / std along `axis` (each feature to mean 0, std 1; a constant one to 0)."""
    x = np.asarray(x, dtype=np.result_type(x, np.float32))
    mean = x.mean(axis=axis, keepdims=True)
    std = x.std(axis=axis, keepdims=True)
    return (x - mean) / np.where(std > 0, std, 1).astype(x.dtype)


# ---------------------------------------------------------------- text


def load_text(path: str | os.PathLike | None = None) -> str:
    """The text of a UTF-8 file; by default tiny Shakespeare (1,115,394 characters), md5-checked."""
    if path is None:
        path = data_file("tinyshakespeare/input.txt")
    return Path(path).read_text(encoding="utf-8")


SHAKESPEARE_TRAIN_FRACTION = 0.9  # nanoGPT's shakespeare_char: the first 90% to train


def load_shakespeare(split: str = "train", root: str | os.PathLike | None = None) -> str:
    """Tiny Shakespeare's first 90% of characters ('train') or the last 10% ('val'),
    split as nanoGPT's shakespeare_char does (1,003,854 and 111,540 characters). The
    split falls mid-line; 'val' is later text of the same plays' file, not a held-out play.
    """
    if split not in ("train", "val"):
        raise ValueError(f"load_shakespeare: split must be 'train' or 'val', got {split!r}")
    text = load_text(data_file("tinyshakespeare/input.txt", root))
    cut = int(len(text) * SHAKESPEARE_TRAIN_FRACTION)
    return text[:cut] if split == "train" else text[cut:]


def shakespeare_vocabulary() -> CharVocabulary:
    """The 65 characters of the whole of Tiny Shakespeare (both splits), sorted, as
    nanoGPT builds its vocabulary: newline, space, punctuation, A-Z, a-z."""
    return CharVocabulary(load_text())


class CharVocabulary:
    """The characters of a text, sorted, each given an id: encode str -> ids, decode back.

        vocab = CharVocabulary(text)
        ids = vocab.encode("To be")      # int64 array of shape (5,)
        vocab.decode(ids) == "To be"
    """

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.char_to_id = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - self.char_to_id.keys())
        if unknown:
            first = min(text.index(c) for c in unknown)
            raise ValueError(f"CharVocabulary.encode: characters {unknown} are not in the "
                             f"vocabulary of {len(self)} characters (the first at position "
                             f"{first} of the text); known: {''.join(self.chars)!r}")
        return np.array([self.char_to_id[c] for c in text], dtype=np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids = np.asarray(ids.numpy() if isinstance(ids, Tensor) else ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"CharVocabulary.decode: ids must be in 0..{len(self) - 1}, "
                             f"got values in [{ids.min()}, {ids.max()}]")
        return "".join(self.chars[i] for i in ids.ravel().tolist())


# ---------------------------------------------------------------- DataLoader


class DataLoader:
    """Mini-batches of Tensors from arrays held in memory.

    data: an array, a tuple of arrays of equal length (such as the (images, labels)
    that load_mnist returns), or a dataset with __len__ and __getitem__(i) that
    returns one sample (a tuple of arrays, stacked into a batch).
    Each batch gathers only its own rows; `transform` is applied to the first
    array of each batch (the inputs). Floating arrays become Tensors of the default
    dtype (float32), integer ones int64 Tensors, on `device`. Yields a Tensor for a
    single array, else a tuple of Tensors. With shuffle=True, every epoch draws a new
    permutation from the loader's own generator, seeded by `seed` (or, when seed is
    None, by minigen's generator, so manual_seed makes it reproducible).
    """

    def __init__(self, data: Any, batch_size: int = 1, shuffle: bool = False,
                 seed: int | None = None, drop_last: bool = False, device: str = "cpu",
                 transform: Callable[[np.ndarray], np.ndarray] | None = None):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, "
                             f"got {batch_size!r}")
        self.arrays, self.dataset = None, None
        if hasattr(data, "shape"):
            self.arrays = [_unwrap(data)]
        elif isinstance(data, (tuple, list)):
            self.arrays = [_unwrap(a) for a in data]
            lengths = [len(a) for a in self.arrays]
            if not lengths or len(set(lengths)) != 1:
                raise ValueError(f"DataLoader: the arrays must be non-empty and of equal "
                                 f"length, got lengths {lengths}")
        elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
            self.dataset = data
        else:
            raise TypeError(f"DataLoader: expected an array, a tuple of arrays or a dataset "
                            f"with __len__ and __getitem__, got {type(data).__name__}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.device = backend.check_device(device)
        self.transform = transform
        if shuffle and seed is None:  # draw from minigen's generator only when needed
            seed = int(backend.integers(0, 2**62, (), backend.CPU))
        self.generator = np.random.default_rng(seed)

    @property
    def num_samples(self) -> int:
        return len(self.dataset) if self.dataset is not None else len(self.arrays[0])

    def __len__(self) -> int:
        """Batches per epoch: ceil(N / batch_size), or floor with drop_last."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def batch_indices(self) -> Iterator[np.ndarray]:
        """The indices of each batch of one epoch (a new permutation with shuffle=True)."""
        n = self.num_samples
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size]

    def __iter__(self) -> Iterator[Tensor | tuple[Tensor, ...]]:
        for indices in self.batch_indices():
            batch = self._gather(indices)
            if self.transform is not None:
                batch[0] = self.transform(batch[0])
            tensors = tuple(self._to_tensor(a) for a in batch)
            yield tensors[0] if len(tensors) == 1 else tensors

    def _gather(self, indices: np.ndarray) -> list:
        if self.arrays is not None:
            return [a[backend.get_array_module(a).asarray(indices)] for a in self.arrays]
        samples = [self.dataset[int(i)] for i in indices]
        if not isinstance(samples[0], (tuple, list)):
            return [np.stack(samples)]
        return [np.stack(column) for column in zip(*samples)]

    def _to_tensor(self, a) -> Tensor:
        if a.dtype.kind == "f":
            dtype = backend.get_default_dtype()
        elif a.dtype.kind in "iu":
            dtype = np.dtype(np.int64)
        else:
            dtype = a.dtype
        return Tensor(a, dtype=dtype, device=self.device)


def _unwrap(a: Any):
    """The array inside a Tensor; NumPy and CuPy arrays as they are."""
    return a.data if isinstance(a, Tensor) else a
