"""Loggers: ILogger is subclassable in Python (override log); Logger prints at or above a severity."""
import enum
import sys
import threading

from . import _kiln


class Severity(enum.IntEnum):
    """ILogger.Severity, with TensorRT's values."""

    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4

    def __repr__(self):
        return f"Severity.{self.name}"

    __str__ = __repr__


class ILogger:
    Severity = Severity
    INTERNAL_ERROR = Severity.INTERNAL_ERROR
    ERROR = Severity.ERROR
    WARNING = Severity.WARNING
    INFO = Severity.INFO
    VERBOSE = Severity.VERBOSE

    def __init__(self):
        pass

    def log(self, severity, msg):  # pragma: no cover - overridden
        raise NotImplementedError

    # Called by the C++ core (possibly from a worker thread, with the GIL held).
    def _kiln_log(self, severity, msg):
        self.log(Severity(severity), msg)

    def _bridge(self):
        b = self.__dict__.get("_kiln_bridge")
        if b is None:
            b = _kiln.LoggerBridge(self)
            self.__dict__["_kiln_bridge"] = b
        return b

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Logger(ILogger):
    """Prints messages at or above min_severity to stderr."""

    def __init__(self, min_severity=Severity.WARNING):
        super().__init__()
        self.min_severity = Severity(int(min_severity))
        self._lock = threading.Lock()

    def log(self, severity, msg):
        if int(severity) <= int(self.min_severity):
            tag = "FEWIV"[int(severity)]
            with self._lock:
                print(f"[{tag}] {msg}", file=sys.stderr, flush=True)


def bridge_of(logger):
    if logger is None:
        logger = Logger()
    if not isinstance(logger, ILogger):
        raise TypeError(f"expected a kiln ILogger, got {type(logger).__name__}")
    return logger._bridge()
