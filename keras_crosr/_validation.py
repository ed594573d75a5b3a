"""Argument checks shared across the package."""

import numbers


def is_integer(value, minimum):
    """Whether ``value`` is an integer (Python's or NumPy's, not a bool) of at least ``minimum``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def is_real(value):
    """Whether ``value`` is a real number (Python's or NumPy's, float or integer, not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(value, name):
    """``value`` as a Python int, or a ``ValueError`` naming the argument ``name`` when it is not an integer >= 1."""
    if not is_integer(value, 1):
        raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}.")
    return int(value)
