"""Dims and Weights, with tuples and lists accepted wherever a Dims is."""
import numpy as np

from .enums import DataType, from_numpy_dtype, nptype


class Dims(tuple):
    MAX_DIMS = 8

    def __new__(cls, shape=()):
        if isinstance(shape, int):
            shape = (shape,)
        return super().__new__(cls, tuple(int(d) for d in shape))

    @property
    def nbDims(self):
        return len(self)

    def __repr__(self):
        return "(" + ", ".join(str(d) for d in self) + ("," if len(self) == 1 else "") + ")"


class Dims2(Dims):
    def __new__(cls, *args):
        return super().__new__(cls, args[0] if len(args) == 1 else args)


class DimsHW(Dims2):
    @property
    def h(self):
        return self[0]

    @property
    def w(self):
        return self[1]


class Dims3(Dims2):
    pass


class Dims4(Dims2):
    pass


def as_dims(d):
    if d is None:
        return None
    if isinstance(d, (int, np.integer)):
        return [int(d)]
    return [int(x) for x in d]


def volume(shape):
    """Product of the dims; 1 for an empty shape."""
    v = 1
    for d in shape:
        v *= int(d)
    return v


class Weights:
    """A typed block of values; keeps the numpy array it was made from alive."""

    def __init__(self, a=None, dtype=None):
        if a is None:
            self._array = np.zeros((0,), dtype=np.float32)
        elif isinstance(a, Weights):
            self._array = a._array
        elif isinstance(a, DataType):
            self._array = np.zeros((0,), dtype=nptype(a))
        else:
            self._array = np.ascontiguousarray(np.asarray(a, dtype=None if dtype is None else nptype(dtype)))

    @property
    def dtype(self):
        return from_numpy_dtype(self._array.dtype)

    @property
    def size(self):
        return int(self._array.size)

    @property
    def nbytes(self):
        return int(self._array.nbytes)

    def numpy(self):
        return self._array

    def __len__(self):
        return self.size


def as_array(w):
    """Weights / numpy / lists -> contiguous numpy array, or None for empty weights."""
    if w is None:
        return None
    if isinstance(w, Weights):
        a = w.numpy()
    else:
        a = np.ascontiguousarray(np.asarray(w))
    if a.size == 0:
        return None
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)
