"""A strict stand-in for CuPy on the CPU, for tests only (MINIGEN_FAKE_CUDA=1).

No GPU has been lent to minigen's CI, so the "cuda" half of the device-parameterised
suite and every lesson's --device cuda would never run. With MINIGEN_FAKE_CUDA=1,
tests/conftest.py makes minigen.backend import this module in place of CuPy; every
"cuda" case then runs here, on NumPy underneath, but under CuPy's rules wherever
breaking one is a bug on a real GPU:

- Its arrays are not NumPy arrays. np.asarray(x) raises CuPy's TypeError ("Implicit
  conversion to a NumPy array is not allowed"), and so does any NumPy function or
  ufunc called on one (np.exp(x), np.sum(x), np.stack([x])); a NumPy array in an
  operation with a device array is a TypeError too, as in CuPy. x.get() and
  asnumpy(x) copy to the host, asarray(host) copies to the device. This is stricter
  than CuPy on one point: CuPy passes np.exp(x) on to cupy.exp through NumPy's
  dispatch protocols (NEP 13 and 18) when it has the function. minigen's rule is
  `xp = get_array_module(x)`; a NumPy call on device data is a bug even where the
  dispatch rescues it, since it fails for every function CuPy lacks and the code no
  longer says where it runs.
- The namespace holds only what CuPy offers: the names below, checked against CuPy's
  reference (docs.cupy.dev) and source. Anything else is an AttributeError, so a
  NumPy-only call (np.errstate, Generator.normal, ...) fails here as on a GPU. Arrays
  carry CuPy's attributes: x.data is a memory pointer, not the array; x.device is a
  Device.
- Reductions and x[i] give 0-d device arrays, never Python or NumPy scalars; integer
  array indices out of range wrap around, as CuPy's do; the random streams are not
  NumPy's, so no test can assume the two devices draw the same numbers.
- Every host-device synchronisation is counted: .item(), .get(), .tolist(), float(),
  int(), bool(), printing, and the ops whose output size depends on the data (a
  boolean mask, nonzero, unique). `count_syncs()`, this module's one addition to
  CuPy's names, gives a test the count and where each happened.

It never ships and is not a device users can pick: it lives in tests/, which is not
packaged, and only the test setup selects it. When a GPU is lent, the same suite runs
on CuPy itself.
"""
from __future__ import annotations

import builtins as _builtins
import contextlib as _contextlib
import os as _os
import sys as _sys
import types as _types

import numpy as _np

# ---------------------------------------------------------------- counting host syncs


class SyncCounter:
    """The host-device synchronisations made while it was active: `count`, and `sites`,
    one (kind, where) pair per sync, `where` naming the caller outside this file."""

    def __init__(self) -> None:
        self.count = 0
        self.sites: list[tuple[str, str]] = []

    def report(self) -> str:
        return "\n".join(f"  {kind:<12} {where}" for kind, where in self.sites)


_active_counters: list[SyncCounter] = []


def _caller() -> str:
    """file:line of the innermost frame outside this module and NumPy, with two callers."""
    frame = _sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename == __file__
                                 or f"{_os.sep}numpy{_os.sep}" in frame.f_code.co_filename):
        frame = frame.f_back
    chain = []
    while frame is not None and len(chain) < 3:
        name = _os.path.relpath(frame.f_code.co_filename)
        chain.append(f"{name}:{frame.f_lineno} ({frame.f_code.co_name})")
        frame = frame.f_back
    return " <- ".join(chain)


def _sync(kind: str) -> None:
    if _active_counters:
        where = _caller()
        for counter in _active_counters:
            counter.count += 1
            counter.sites.append((kind, where))


@_contextlib.contextmanager
def count_syncs():
    """with count_syncs() as syncs: ... then syncs.count, syncs.sites, syncs.report()."""
    counter = SyncCounter()
    _active_counters.append(counter)
    try:
        yield counter
    finally:
        _active_counters.remove(counter)


# ---------------------------------------------------------------- moving between the sides

_SUPPORTED_KINDS = "biufc"  # CuPy has no object, string, void or datetime arrays


def _wrap(a: _np.ndarray) -> ndarray:
    if not isinstance(a, _np.ndarray):  # NumPy gives scalars for 0-d results; CuPy does not
        a = _np.asarray(a)
    if a.dtype.kind not in _SUPPORTED_KINDS:
        raise ValueError(f"Unsupported dtype {a.dtype}")
    out = ndarray.__new__(ndarray)
    out._array = a
    return out


def _unsupported(value) -> TypeError:
    return TypeError(
        f"Unsupported type {type(value)}: a NumPy array met a device array (CuPy refuses "
        "to copy it implicitly; move it with cupy.asarray or .get() first)")


def _host(value):
    """The NumPy array inside each device array of `value`, nested in lists and tuples.

    A NumPy array here is CuPy's TypeError: CuPy functions take device arrays and
    scalars only (except asarray and friends).
    """
    if type(value) is ndarray:
        return value._array
    if isinstance(value, _np.ndarray):
        raise _unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_host(v) for v in value) if type(value) in (list, tuple) \
            else tuple(_host(v) for v in value)
    return value


def _host_kwargs(kwargs: dict) -> dict:
    return {k: _host(v) for k, v in kwargs.items()}


def _device(value):
    """NumPy results as device arrays (NumPy scalars as 0-d arrays), as CuPy returns them."""
    if isinstance(value, _np.ndarray):
        return _wrap(value)
    if isinstance(value, _np.generic):
        return _wrap(_np.asarray(value))
    if isinstance(value, (tuple, list)):
        return type(value)(_device(v) for v in value) if type(value) in (list, tuple) \
            else tuple(_device(v) for v in value)
    return value


def _index_key(key, shape: tuple):
    """A key for NumPy: device arrays unwrapped, integer arrays wrapped into range as CuPy
    does (NumPy would raise), and a boolean mask counted as a sync (its result's size
    depends on the data)."""
    parts = list(key) if isinstance(key, tuple) else [key]
    for i, part in enumerate(parts):
        if type(part) is ndarray:
            parts[i] = part._array
        elif isinstance(part, list):  # [] picks nothing, as NumPy's x[[]] does
            parts[i] = _np.asarray(part) if part else _np.zeros(0, _np.intp)
    arrays = [p for p in parts if isinstance(p, _np.ndarray)]
    # builtins: this module's own any, all, sum, ... are CuPy's, as in CuPy
    if _builtins.any(p.dtype == _np.bool_ for p in arrays):
        _sync("boolean mask")
    elif arrays and not _builtins.any(p is None or p is Ellipsis for p in parts):
        for i, part in enumerate(parts):
            if isinstance(part, _np.ndarray) and part.dtype.kind in "iu" \
                    and i < len(shape) and shape[i]:
                parts[i] = _np.mod(part, shape[i])
    return tuple(parts) if isinstance(key, tuple) else parts[0]


# ---------------------------------------------------------------- ndarray


class _Flags:
    def __init__(self, array: _np.ndarray) -> None:
        self.c_contiguous = array.flags.c_contiguous
        self.f_contiguous = array.flags.f_contiguous
        self.owndata = array.flags.owndata

    def __getitem__(self, name: str) -> bool:
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[name]


class _MemoryPointer:
    """What CuPy's ndarray.data is: a pointer to device memory, not the array."""

    def __init__(self, array: _np.ndarray) -> None:
        self.ptr = array.__array_interface__["data"][0]
        self.device = cuda.Device(0)


class ndarray:  # noqa: N801 (CuPy's name)
    """An array "on the device": NumPy's array inside, CuPy's interface outside."""

    __slots__ = ("_array", "__weakref__")
    __array_ufunc__ = None  # np.exp(x) is a TypeError; NumPy's operators defer to ours
    __array_priority__ = 100
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C") -> None:
        if memptr is not None or strides is not None:
            raise NotImplementedError("the CuPy stand-in allocates its own memory")
        self._array = _np.empty(shape, dtype=dtype, order=order)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(
            f"numpy.{func.__name__}() was given a device array; on a GPU NumPy cannot read "
            f"it (CuPy: 'Implicit conversion to a NumPy array is not allowed'). Use "
            f"xp = get_array_module(x) and xp.{func.__name__}, or copy it with .get()")

    # ----- attributes
    shape = property(lambda self: self._array.shape)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    dtype = property(lambda self: self._array.dtype)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    flags = property(lambda self: _Flags(self._array))
    data = property(lambda self: _MemoryPointer(self._array))
    device = property(lambda self: cuda.Device(0))

    @shape.setter
    def shape(self, value) -> None:
        self._array.shape = value

    @property
    def T(self) -> ndarray:  # noqa: N802
        return _wrap(self._array.T)

    @property
    def base(self):
        return None if self._array.base is None else _device(self._array.base)

    @property
    def real(self) -> ndarray:
        return _wrap(self._array.real)

    @property
    def imag(self) -> ndarray:
        return _wrap(self._array.imag)

    # ----- copies to the host: each one waits for the device
    def get(self, stream=None, order="C", out=None) -> _np.ndarray:
        _sync("get")
        if out is not None:
            out[...] = self._array
            return out
        return _np.array(self._array, order=order, copy=True)

    def set(self, arr, stream=None) -> None:
        if not isinstance(arr, _np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype or arr.shape != self.shape:
            raise ValueError(f"set: {arr.dtype} {arr.shape} into {self.dtype} {self.shape}")
        self._array[...] = arr

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        _sync("item")
        return self._array.item()

    def tolist(self):
        _sync("tolist")
        return self._array.tolist()

    def tobytes(self, order="C") -> bytes:
        _sync("tobytes")
        return self._array.tobytes(order)

    def __bool__(self) -> bool:
        if self.size > 1:
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous. Use a.any() or a.all()")
        _sync("bool")
        return bool(self._array)

    def __float__(self) -> float:
        _sync("float")
        return float(self._array)

    def __int__(self) -> int:
        _sync("int")
        return int(self._array)

    def __complex__(self) -> complex:
        _sync("complex")
        return complex(self._array)

    def __repr__(self) -> str:
        _sync("repr")
        return repr(self._array)

    def __str__(self) -> str:
        _sync("str")
        return str(self._array)

    def __format__(self, spec: str) -> str:
        _sync("format")
        return format(self._array, spec)

    def __reduce__(self):
        return array, (self.get(),)

    # ----- containers
    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, key):
        return _device(self._array[_index_key(key, self.shape)])

    def __setitem__(self, key, value) -> None:
        if isinstance(value, _np.ndarray) and value.ndim:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill: copy it to "
                             "the device first (cupy.asarray)")
        self._array[_index_key(key, self.shape)] = _host(value)

    def __copy__(self) -> ndarray:
        return _wrap(self._array.copy())

    def __deepcopy__(self, memo) -> ndarray:
        return _wrap(self._array.copy())

    def nonzero(self) -> tuple:
        _sync("nonzero")
        return _device(self._array.nonzero())

    def compress(self, condition, axis=None, out=None) -> ndarray:
        _sync("compress")
        return _device(self._array.compress(_host(condition), axis))


def _method(name: str):
    def method(self, *args, **kwargs):
        out = kwargs.get("out")
        result = getattr(self._array, name)(*_host(args), **_host_kwargs(kwargs))
        return out if out is not None else _device(result)
    method.__name__ = name
    return method


# ndarray methods as CuPy's ndarray has them (cupy/_core/core.pyx), beside those above
for _name in ("astype copy view fill reshape transpose swapaxes flatten ravel squeeze take put "
              "repeat choose sort argsort partition argpartition diagonal max argmax min "
              "argmin clip round trace sum cumsum mean var std prod cumprod all any conj "
              "conjugate dot").split():
    setattr(ndarray, _name, _method(_name))


def _operator(name: str, in_place: bool = False):
    op = getattr(_np.ndarray, name)

    def method(self, other):
        if type(other) is ndarray:
            other = other._array
        elif isinstance(other, _np.ndarray):
            raise _unsupported(other)
        elif not isinstance(other, (int, float, complex, bool, _np.generic)):
            return NotImplemented  # a Tensor, say: let its reflected operator answer
        result = op(self._array, other)
        if in_place:
            return self
        return _device(result)
    method.__name__ = name
    return method


for _name in ("add sub mul truediv floordiv mod pow matmul and or xor lshift rshift "
              "divmod").split():
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__"))
    setattr(ndarray, f"__r{_name}__", _operator(f"__r{_name}__"))
    if _name != "divmod":
        setattr(ndarray, f"__i{_name}__", _operator(f"__i{_name}__", in_place=True))
for _name in "lt le eq ne gt ge".split():
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__"))
for _name in "neg pos abs invert".split():
    setattr(ndarray, f"__{_name}__",
            (lambda op: lambda self: _wrap(op(self._array)))(getattr(_np.ndarray, f"__{_name}__")))


# ---------------------------------------------------------------- creating and converting


def _from_host(obj, dtype=None, order="K", copy=True) -> ndarray:
    """obj (a NumPy array, a nested list, a scalar, device arrays in a list) as a new
    device array: a host-to-device copy, so that later changes to obj do not show."""
    if isinstance(obj, (list, tuple)):
        obj = _host_nested(obj)
    return _wrap(_np.array(obj, dtype=dtype, order=order, copy=True))


def _host_nested(value):
    if type(value) is ndarray:
        return value._array
    if isinstance(value, (list, tuple)):
        return [_host_nested(v) for v in value]
    return value


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0) -> ndarray:
    if type(obj) is ndarray:
        result = _np.array(obj._array, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return obj if result is obj._array else _wrap(result)
    out = _from_host(obj, dtype, order)
    return _wrap(_np.array(out._array, ndmin=ndmin, copy=False)) if ndmin else out


def asarray(a, dtype=None, order=None, *, blocking=False) -> ndarray:
    if type(a) is ndarray:
        return array(a, dtype=dtype, copy=None, order=order or "K")
    return _from_host(a, dtype, order or "K")


def asanyarray(a, dtype=None, order=None) -> ndarray:
    return asarray(a, dtype, order)


def asnumpy(a, stream=None, order="C", out=None) -> _np.ndarray:
    if type(a) is ndarray:
        return a.get(stream=stream, order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    for a in args:
        if type(a) is ndarray:
            return _sys.modules[__name__]
    return _np


def _function(name: str, syncs: bool = False, device_scalar: bool = False):
    """cupy.<name>: NumPy's function on the arrays inside, the result on the device."""
    numpy_function = getattr(_np, name)

    def function(*args, **kwargs):
        out = kwargs.get("out")
        if syncs:
            _sync(name)
        result = numpy_function(*_host(args), **_host_kwargs(kwargs))
        if device_scalar:  # NumPy returns a Python bool; CuPy a 0-d array on the device
            result = _np.asarray(result)
        return out if out is not None else _device(result)
    function.__name__ = name
    function.__qualname__ = name
    return function


# the routines of CuPy's reference (docs.cupy.dev/en/stable/reference/routines.html) that
# minigen might meet; numpy names CuPy lacks (errstate, ndindex, broadcast_shapes,
# frombuffer, lib.format, ...) are absent on purpose
_FUNCTIONS = """
    empty empty_like eye full full_like identity ones ones_like zeros zeros_like copy arange
    linspace logspace meshgrid diag diagflat tri tril triu
    copyto ravel reshape moveaxis rollaxis swapaxes transpose atleast_1d atleast_2d atleast_3d
    broadcast_arrays broadcast_to expand_dims squeeze column_stack concatenate dstack hstack
    stack vstack asfortranarray ascontiguousarray require array_split dsplit hsplit split
    vsplit repeat tile flip fliplr flipud roll rot90 pad
    can_cast common_type result_type min_scalar_type promote_types
    indices ravel_multi_index unravel_index choose diagonal select take take_along_axis place
    put fill_diagonal
    einsum cross dot inner kron matmul outer tensordot vdot trace
    isclose isscalar all any count_nonzero
    prod sum cumprod cumsum nansum nanprod diff around round clip nan_to_num
    argmax argmin nanargmax nanargmin searchsorted where argpartition argsort lexsort
    partition sort
    corrcoef cov amax max amin min nanmax nanmin percentile quantile ptp average mean std var
    nanmean nanstd nanvar median digitize histogram
""".split()
# routines whose output size depends on the data: CuPy waits for the device to learn it
_SYNCING_FUNCTIONS = "unique nonzero flatnonzero argwhere compress extract bincount".split()
_DEVICE_SCALAR_FUNCTIONS = "allclose array_equal".split()

for _name in _FUNCTIONS:
    globals()[_name] = _function(_name)
for _name in _SYNCING_FUNCTIONS:
    globals()[_name] = _function(_name, syncs=True)
for _name in _DEVICE_SCALAR_FUNCTIONS:
    globals()[_name] = _function(_name, device_scalar=True)

# ufuncs: CuPy's list (docs.cupy.dev/en/stable/reference/ufunc.html); ufunc.at only where
# CuPy has a scatter kernel for it (add, subtract, maximum, minimum, bitwise and/or/xor)
_UFUNCS = """
    add subtract multiply divide logaddexp logaddexp2 true_divide floor_divide negative
    power remainder mod fmod absolute rint sign exp exp2 log log2 log10 expm1 log1p sqrt
    square cbrt reciprocal sin cos tan arcsin arccos arctan arctan2 hypot sinh cosh tanh
    arcsinh arccosh arctanh deg2rad rad2deg degrees radians bitwise_and bitwise_or
    bitwise_xor invert left_shift right_shift greater greater_equal less less_equal
    not_equal equal logical_and logical_or logical_xor logical_not maximum minimum fmax fmin
    isfinite isinf isnan signbit copysign nextafter modf ldexp frexp floor ceil trunc
    conjugate
""".split()
_SCATTER_UFUNCS = "add subtract maximum minimum bitwise_and bitwise_or bitwise_xor".split()


class ufunc:  # noqa: N801 (CuPy's name)
    """A CuPy ufunc: called on device arrays and scalars; `at` where CuPy has it."""

    def __init__(self, name: str) -> None:
        self._ufunc = getattr(_np, name)
        self.__name__ = name
        self.nin, self.nout, self.nargs = self._ufunc.nin, self._ufunc.nout, self._ufunc.nargs

    def __repr__(self) -> str:
        return f"<ufunc 'cupy_{self.__name__}'>"

    def __call__(self, *args, **kwargs):
        out = kwargs.get("out")
        result = self._ufunc(*_host(args), **_host_kwargs(kwargs))
        return out if out is not None else _device(result)

    def __getattr__(self, name: str):
        if name == "at" and self.__name__ in _SCATTER_UFUNCS:
            return self._at
        raise AttributeError(f"cupy.{self.__name__} has no attribute {name!r} in the CuPy "
                             "stand-in (tests/fake_cupy.py)")

    def _at(self, a, indices, b=None) -> None:
        if type(a) is not ndarray:
            raise TypeError(f"cupy.{self.__name__}.at: a must be a cupy.ndarray, "
                            f"got {type(a).__name__}")
        key = _index_key(indices, a.shape)
        if b is None:
            self._ufunc.at(a._array, key)
        else:
            self._ufunc.at(a._array, key, _host(b))


for _name in _UFUNCS:
    globals()[_name] = ufunc(_name)
abs = globals()["absolute"]  # noqa: A001 (CuPy's alias)
conj = globals()["conjugate"]

# dtypes, scalar types and constants: CuPy borrows NumPy's
for _name in ("dtype finfo iinfo issubdtype bool_ int8 int16 int32 int64 uint8 uint16 uint32 "
              "uint64 float16 float32 float64 complex64 complex128 intp uintp generic number "
              "integer signedinteger unsignedinteger floating inexact complexfloating "
              "e pi inf nan newaxis euler_gamma").split():
    globals()[_name] = getattr(_np, _name)


# ---------------------------------------------------------------- submodules


def _module(name: str, doc: str, **members) -> _types.ModuleType:
    module = _types.ModuleType(f"{__name__}.{name}", doc)
    module.__dict__.update(members)
    return module


def _linalg_function(name: str):
    numpy_function = getattr(_np.linalg, name)

    def function(*args, **kwargs):
        return _device(numpy_function(*_host(args), **_host_kwargs(kwargs)))
    function.__name__ = name
    return function


# cupy.linalg (docs.cupy.dev/en/stable/reference/linalg.html): no eig, eigvals, cond
linalg = _module("linalg", "cupy.linalg in the stand-in", **{
    name: _linalg_function(name) for name in (
        "cholesky qr svd eigh eigvalsh norm det matrix_rank slogdet solve tensorsolve lstsq "
        "inv pinv tensorinv matrix_power").split()})


def _as_strided(x, shape=None, strides=None):
    return _wrap(_np.lib.stride_tricks.as_strided(_host(x), shape, strides))


def _sliding_window_view(x, window_shape, axis=None, *, subok=False, writeable=False):
    if writeable:  # CuPy documents writeable as "not supported"
        raise NotImplementedError("Writeable views are not supported.")
    return _wrap(_np.lib.stride_tricks.sliding_window_view(_host(x), window_shape, axis))


lib = _module("lib", "cupy.lib in the stand-in", stride_tricks=_module(
    "lib.stride_tricks", "cupy.lib.stride_tricks in the stand-in",
    as_strided=_as_strided, sliding_window_view=_sliding_window_view))


# ----- random: the legacy module-level functions and default_rng's Generator


class _RandomState:
    """cupy.random.RandomState: the module-level functions draw from one of these.

    Philox, not NumPy's PCG64 or MT19937: CuPy's streams differ from NumPy's too.
    """

    def __init__(self, seed=None) -> None:
        self.seed(seed)

    def seed(self, seed=None) -> None:
        self._generator = _np.random.Generator(_np.random.Philox(seed))

    def standard_normal(self, size=None, dtype=float):
        return _wrap(_np.asarray(self._generator.standard_normal(size, dtype=dtype)))

    def randn(self, *size, dtype=float):
        return self.standard_normal(size, dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        draw = self._generator.normal(_host(loc), _host(scale), size)
        return _wrap(_np.asarray(draw, dtype=dtype))

    def random_sample(self, size=None, dtype=float):
        return _wrap(_np.asarray(self._generator.random(size, dtype=dtype)))

    random = random_sample

    def rand(self, *size, dtype=float):
        return self.random_sample(size, dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        draw = self._generator.uniform(_host(low), _host(high), size)
        return _wrap(_np.asarray(draw, dtype=dtype))

    def randint(self, low, high=None, size=None, dtype=int):
        if high is None:
            low, high = 0, low
        return _wrap(_np.asarray(self._generator.integers(low, high, size, dtype=dtype)))

    def permutation(self, a):
        if isinstance(a, (int, _np.integer)):
            return _wrap(self._generator.permutation(int(a)))
        return _wrap(self._generator.permutation(_host(a)))

    def shuffle(self, a) -> None:
        self._generator.shuffle(_host(a))

    def choice(self, a, size=None, replace=True, p=None):
        return _device(self._generator.choice(_host(a), size, replace, _host(p)))


class _Generator:
    """cupy.random.Generator, with the methods CuPy's has (cupy/random/_generator_api.pyx):
    no normal, choice, permutation or shuffle, which NumPy's Generator has."""

    def __init__(self, bit_generator=None) -> None:
        self._generator = _np.random.Generator(_np.random.Philox(bit_generator))


def _generator_method(name: str):
    def method(self, *args, **kwargs):
        draw = getattr(self._generator, name)(*_host(args), **_host_kwargs(kwargs))
        return _wrap(_np.asarray(draw))
    method.__name__ = name
    return method


for _name in ("random uniform integers beta chisquare dirichlet exponential f geometric "
              "hypergeometric logseries standard_exponential poisson power standard_normal "
              "gamma standard_gamma binomial").split():
    setattr(_Generator, _name, _generator_method(_name))

_random_state = _RandomState()


def _seed(seed=None) -> None:
    _random_state.seed(seed)


def _default_rng(seed=None) -> _Generator:
    return seed if isinstance(seed, _Generator) else _Generator(seed)


def _legacy(name: str):
    """cupy.random.<name>: the method of the module's one RandomState."""
    def function(*args, **kwargs):
        return getattr(_random_state, name)(*args, **kwargs)
    function.__name__ = name
    return function


random = _module(
    "random", "cupy.random in the stand-in", seed=_seed, default_rng=_default_rng,
    Generator=_Generator, RandomState=_RandomState, get_random_state=lambda: _random_state,
    **{name: _legacy(name) for name in ("standard_normal randn normal random_sample random "
                                        "rand uniform randint permutation shuffle "
                                        "choice").split()})


# ----- cuda: the device, for code that waits on it


class _Device:
    def __init__(self, device=None) -> None:
        self.id = 0

    def synchronize(self) -> None:
        _sync("synchronize")

    def use(self) -> None:
        pass

    def __enter__(self) -> _Device:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __eq__(self, other) -> bool:
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return "<CUDA Device 0 (CuPy stand-in)>"


class _Stream:
    def synchronize(self) -> None:
        _sync("synchronize")


_null_stream = _Stream()
cuda = _module(
    "cuda", "cupy.cuda in the stand-in: one device, id 0", Device=_Device,
    get_device_id=lambda: 0, is_available=lambda: True,
    get_current_stream=lambda: _null_stream, Stream=_Stream,
    runtime=_module("cuda.runtime", "cupy.cuda.runtime in the stand-in",
                    getDeviceCount=lambda: 1,
                    deviceSynchronize=lambda: _sync("synchronize")))


def is_available() -> bool:
    return True


__version__ = "13.0.0+fake"

del _name
