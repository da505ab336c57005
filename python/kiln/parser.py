"""OnnxParser over the C++ importer."""
import os

from . import _kiln
from .enums import ErrorCode
from .logger import bridge_of


class ParserError:
    def __init__(self, c):
        self._c = c

    def code(self):
        return ErrorCode(self._c.code())

    def desc(self):
        return self._c.desc()

    def file(self):
        return self._c.file()

    def line(self):
        return self._c.line()

    def func(self):
        return self._c.func()

    def node(self):
        return self._c.node()

    def node_name(self):
        return self._c.node_name()

    def node_operator(self):
        return self._c.node_operator()

    def local_function_stack(self):
        return []

    def __str__(self):
        return str(self._c)

    __repr__ = __str__


class OnnxParser:
    def __init__(self, network, logger):
        self.network = network
        self.logger = logger
        self._c = _kiln.OnnxParser(network._c, bridge_of(logger))

    def _done(self, ok):
        self.network._dirty = True
        self.network._tensors.clear()
        return bool(ok)

    def parse(self, model, path=None):
        return self._done(self._c.parse(memoryview(bytes(model)) if not isinstance(model, (bytes, bytearray, memoryview)) else model,
                                        "" if path is None else os.fspath(path)))

    def parse_from_file(self, model):
        return self._done(self._c.parse_from_file(os.fspath(model)))

    def parse_with_weight_descriptors(self, model):
        return self.parse(model)

    @property
    def num_errors(self):
        return self._c.num_errors

    def get_error(self, index):
        e = self._c.get_error(int(index))
        return None if e is None else ParserError(e)

    def clear_errors(self):
        self._c.clear_errors()

    def supports_operator(self, op_type):
        return self._c.supports_operator(str(op_type))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
