"""Grad mode: a thread-local switch that says whether ops record the autograd graph."""
import functools
import threading

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


def _set_enabled(flag):
    _state.enabled = bool(flag)


class _GradMode:
    """Base for the context managers; each also works as a function decorator."""

    _flag = None

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_enabled(self._flag)
        return self

    def __exit__(self, *exc):
        _set_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Ops inside do not record the graph (`with kg.no_grad():` or `@kg.no_grad()`)."""

    _flag = False


class enable_grad(_GradMode):
    _flag = True


class set_grad_enabled(_GradMode):
    """`kg.set_grad_enabled(flag)` switches at once and also works as a context manager."""

    def __init__(self, mode):
        self._flag = bool(mode)
        self._prev = is_grad_enabled()
        _set_enabled(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_enabled(self._prev)
        return False

    def __call__(self, fn):
        flag = self._flag
        _set_enabled(self._prev)  # the decorator form must not switch at definition time

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(flag):
                return fn(*args, **kwargs)

        return wrapper
