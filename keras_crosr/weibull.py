"""libMR-exact Weibull tail fitting (``FitHigh``) and W-scores, vectorised over models.

This module reproduces PyPI ``libmr`` 0.1.9 (``MR.fit_high(data, tail_size)`` and ``MR.w_score(x)``)
operation by operation, but for many models (one per class) at once with numpy:

1. **Tail.** The data of one model are sorted in descending order and the ``tail_size`` largest values
   form the tail (``MetaRecognition::EvtGeneric`` with ``sign = 1``). ``small_score`` is the smallest
   tail value, and every tail value is shifted: ``t = (x + translate_amount) - small_score``, so the
   smallest becomes ``translate_amount`` (PyPI libmr's default is 1; OSDN's copy uses 10000).
2. **Fit.** ``weibull_fit`` (``weibull.c``) takes ``log(t)``, rescales it to ``x0 = (log t - max) / range``
   (so ``max(x0) = 0``, ``min(x0) = -1``), starts from ``sigma = sqrt(6) * std(x0) / pi``, brackets the
   root of the scale likelihood ``L(sigma) = sigma + mean(x0) - sum(x0 e^(x0/sigma)) / sum(e^(x0/sigma))``
   by halving or doubling, and finds it with libMR's ``wdfzero`` (a Brent/Dekker root finder with
   ``tol = 1e-6``; the iterations are repeated here step by step, including libMR's quirk of testing
   the interpolation step also after a bisection). Then ``mu = sigma * log(mean(e^(x0/sigma)))``, and
   back in the original units ``scale = exp(range * mu + max)`` and ``shape = 1 / (range * sigma)``.
   Sums run left to right over the tail sorted in descending order, like the C loops, and the logs of the
   tail and the final ``log`` / ``exp`` use the C library's functions, as libMR does.
3. **W-score.** ``w_score(x) = 1 - exp(-((x * sign + translate_amount - small_score) / scale) ** shape)``,
   and 0 where the shifted value is negative (``weibull_cdf``).

libMR's failures are kept, with one difference: libMR marks the model invalid and then returns
``-9999`` from every ``w_score`` call, silently; here :func:`fit_high` raises :class:`WeibullFitError`
naming the models and libMR's return code (see :data:`FAILURE_REASONS`).
"""

import math

import numpy as np

from keras_crosr._validation import is_integer

__all__ = ["FAILURE_REASONS", "WeibullFitError", "WeibullModel", "fit_high", "import_libmr"]

_TOL = 1e-6  # weibull_fit's tolerance for wdfzero
_FULL_PRECISION_MIN = 2.225073858507201e-308
_FULL_PRECISION_MAX = 1.797693134862315e308
_MAX_ROOT_ITERATIONS = 10_000  # a guard: libMR itself has no cap

FAILURE_REASONS = {
    -1: "a shifted tail value (x + translate_amount - small_score) is <= 0",
    -2: "the tail has no spread (all shifted values have the same logarithm)",
    -3: "the likelihood root could not be bracketed (under- or overflow)",
    -4: "the likelihood has no sign change in its bracket",
    -5: "the fitted 1 / shape is not positive (weibull_neg_log_likelihood fails)",
    -10: f"the root finder did not converge within {_MAX_ROOT_ITERATIONS} iterations (libMR would not stop)",
    -11: "the fitted parameters are not finite (libMR would return NaN W-scores)",
    -9999: "libmr marked the fit invalid",
}
"""libMR ``weibull_fit`` return codes (and ours: -10, -11, and -9999 for the libmr backend) explained."""


class WeibullFitError(ValueError):
    """Raised when libMR's Weibull fit fails for some models.

    Attributes:
        codes: `(n_models,)` int array, 1 where the fit succeeded, else the libMR return code.
        failed: `(n_failed,)` indices of the models that failed.
    """

    def __init__(self, codes, tails=None):
        self.codes = np.asarray(codes)
        self.failed = np.flatnonzero(self.codes != 1)
        lines = []
        for i in self.failed[:10]:
            line = f"model {i}: code {self.codes[i]} ({FAILURE_REASONS.get(int(self.codes[i]), 'unknown')})"
            if tails is not None:
                tail = tails[i]
                line += f"; tail min {np.min(tail):.6g}, max {np.max(tail):.6g}"
            lines.append(line)
        more = "" if len(self.failed) <= 10 else f"\n  ... and {len(self.failed) - 10} more"
        super().__init__(
            f"Weibull fit failed for {len(self.failed)} of {len(self.codes)} models (libMR would silently "
            "return -9999 W-scores for them):\n  " + "\n  ".join(lines) + more
        )


class WeibullModel:
    """Fitted libMR ``FitHigh`` Weibull models, one per entry of the per-model arrays.

    Args:
        shape: `(n_models,)` Weibull shape (libMR's ``get_params()[1]``), > 0.
        scale: `(n_models,)` Weibull scale (libMR's ``get_params()[0]``), > 0.
        translate_amount: `(n_models,)` (or a scalar) shift added before fitting.
        small_score: `(n_models,)` smallest value of each fitted tail.
        sign: `(n_models,)` (or a scalar) +1 (``fit_high``) or -1 (``fit_low``).
    """

    def __init__(self, shape, scale, translate_amount, small_score, sign=1.0):
        shape = np.asarray(shape, dtype=np.float64)
        if shape.ndim != 1:
            raise ValueError(f"`shape` must be 1-D (n_models,), got shape {shape.shape}")
        n = shape.shape[0]
        arrays = {"shape": shape}
        for name, value in (
            ("scale", scale),
            ("translate_amount", translate_amount),
            ("small_score", small_score),
            ("sign", sign),
        ):
            value = np.asarray(value, dtype=np.float64)
            if value.ndim == 0:
                value = np.full(n, value)
            if value.shape != (n,):
                raise ValueError(f"`{name}` must have shape ({n},) like `shape`, got {value.shape}")
            arrays[name] = value
        for name, value in arrays.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(f"`{name}` must be finite, got {value}")
        for name in ("shape", "scale"):
            if np.any(arrays[name] <= 0):
                raise ValueError(f"`{name}` must be > 0 for every model, got {arrays[name]}")
        if not np.all(np.isin(arrays["sign"], (-1.0, 1.0))):
            raise ValueError(f"`sign` must be +1 or -1, got {arrays['sign']}")
        self.shape = arrays["shape"]
        self.scale = arrays["scale"]
        self.translate_amount = arrays["translate_amount"]
        self.small_score = arrays["small_score"]
        self.sign = arrays["sign"]

    @property
    def n_models(self):
        """Number of fitted models."""
        return self.shape.shape[0]

    def w_score(self, x):
        """libMR's ``MR.w_score``, for every model at once.

        Args:
            x: scores broadcastable to `(..., n_models)`; column `j` is scored by model `j`. A scalar is
                scored by every model (`(n_models,)`), as libMR's ``w_score(x)`` scores it by its one model.

        Returns:
            float64 array of the broadcast shape, in [0, 1]:
            ``1 - exp(-(((x * sign + translate_amount) - small_score) / scale) ** shape)``, and 0 where the
            shifted value is negative.
        """
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        if x.shape[-1] not in (1, self.n_models):
            raise ValueError(f"`x` must broadcast to (..., {self.n_models}), got shape {x.shape}")
        # Computed model-major, `(n_models, ...)`: each pass then runs over contiguous scores with one
        # parameter per model, several times faster than broadcasting the parameters along the last axis.
        columns = np.moveaxis(np.broadcast_to(x, x.shape[:-1] + (self.n_models,)), -1, 0)
        per_model = (self.n_models,) + (1,) * (x.ndim - 1)
        out = np.empty(columns.shape)
        np.multiply(columns, self.sign.reshape(per_model), out=out)
        np.add(out, self.translate_amount.reshape(per_model), out=out)
        np.subtract(out, self.small_score.reshape(per_model), out=out)
        np.maximum(out, 0.0, out=out)
        np.divide(out, self.scale.reshape(per_model), out=out)
        with np.errstate(over="ignore"):  # (t / scale) ** shape = inf is a W-score of 1, as in libMR
            np.power(out, self.shape.reshape(per_model), out=out)
        np.negative(out, out=out)
        np.exp(out, out=out)
        np.subtract(1.0, out, out=out)
        return np.moveaxis(out, 0, -1)

    def cdf(self, x):
        """libMR's ``MR.cdf``: the same as :meth:`w_score` (libMR's default ``complement_reject`` type)."""
        return self.w_score(x)

    def __repr__(self):
        return f"WeibullModel(n_models={self.n_models})"


def fit_high(data, tail_size, translate_amount=1.0, backend="numpy"):
    """libMR ``MR.fit_high(data, tail_size)`` for one model per row.

    Args:
        data: `(n_models, n_values)` array, a sequence of 1-D arrays (lengths may differ), or a 1-D array
            (one model). Each model's tail is its ``tail_size`` largest values.
        tail_size: int >= 2, the number of extremes per model (libMR's ``fit_size``).
        translate_amount: shift so that the smallest tail value becomes ``translate_amount`` (PyPI libmr
            default 1). ``backend="libmr"`` needs an integer (libmr stores it as ``int``).
        backend: ``"numpy"`` (this module's vectorised reimplementation) or ``"libmr"`` (libmr itself,
            one ``MR`` object per model).

    Returns:
        A :class:`WeibullModel` with ``n_models`` models.

    Raises:
        ValueError: bad arguments, non-finite data, or a model with fewer values than ``tail_size``.
        WeibullFitError: libMR's fit fails for some models (libMR would return -9999 W-scores).
    """
    if not is_integer(tail_size, 2):
        raise ValueError(f"`tail_size` must be an int >= 2, got {tail_size!r}")
    tail_size = int(tail_size)
    translate_amount = float(translate_amount)
    if not math.isfinite(translate_amount):
        raise ValueError(f"`translate_amount` must be finite, got {translate_amount}")
    rows = _as_rows(data, tail_size)
    if backend == "numpy":
        return _fit_high_numpy(rows, tail_size, translate_amount)
    if backend == "libmr":
        return _fit_high_libmr(rows, tail_size, translate_amount)
    raise ValueError(f'`backend` must be "numpy" or "libmr", got {backend!r}')


def import_libmr():
    """Imports libmr, or raises an ImportError that says how to install it."""
    try:
        import libmr
    except ImportError as error:
        raise ImportError(
            "backend='libmr' needs the libmr package (PyPI libmr==0.1.9), which is not installed. Install "
            "it with: pip install numpy cython && pip install --no-build-isolation libmr"
        ) from error
    return libmr


def _as_rows(data, tail_size):
    """Validates `data` and returns a list of 1-D float64 arrays, one per model."""
    try:
        array = np.asarray(data, dtype=np.float64)
    except ValueError:  # rows of different lengths
        rows = [np.asarray(row, dtype=np.float64) for row in data]
    else:
        if array.ndim not in (1, 2):
            raise ValueError(f"`data` must be 1-D or 2-D (n_models, n_values), got shape {array.shape}")
        rows = [array] if array.ndim == 1 else list(array)
    if not rows:
        raise ValueError("`data` holds no models")
    for i, row in enumerate(rows):
        if row.ndim != 1:
            raise ValueError(f"model {i}: data must be 1-D, got shape {row.shape}")
        if row.shape[0] < tail_size:
            raise ValueError(f"model {i}: tail_size {tail_size} is larger than the data size {row.shape[0]}")
        if not np.all(np.isfinite(row)):
            raise ValueError(f"model {i}: data must be finite (found NaN or inf)")
    return rows


def _fit_high_numpy(rows, tail_size, translate_amount):
    tails = np.stack([np.sort(row)[::-1][:tail_size] for row in rows])
    small_score = tails[:, -1].copy()
    shifted = (tails + translate_amount) - small_score[:, None]
    scale, shape, codes = _weibull_fit(shifted)
    if np.any(codes != 1):
        raise WeibullFitError(codes, tails)
    return WeibullModel(shape, scale, translate_amount, small_score, 1.0)


def _fit_high_libmr(rows, tail_size, translate_amount):
    libmr = import_libmr()
    if translate_amount != int(translate_amount):
        raise ValueError(f"libmr stores translate_amount as an int, got {translate_amount}")
    params, codes = [], np.ones(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        mr = libmr.MR(translate_amount=int(translate_amount))
        mr.fit_high(row, tail_size)
        if not mr.is_valid:
            codes[i] = -9999
        params.append(mr.get_params())  # (scale, shape, sign, translate_amount, small_score)
    if np.any(codes != 1):
        raise WeibullFitError(codes, [np.sort(row)[::-1][:tail_size] for row in rows])
    scale, shape, sign, translate, small_score = (
        np.array(column, dtype=np.float64) for column in zip(*params, strict=True)
    )
    return WeibullModel(shape, scale, translate, small_score, sign)


def _libm(function, values):
    """``math.log`` / ``math.exp`` (the C library's, as libMR calls them) elementwise on a few values.

    numpy's SIMD ``log`` / ``exp`` may differ in the last bit, and for tails whose spread is ~1e-12 of their
    values (a large ``translate_amount``) the shape is ~1e12, so one ulp of the logs or of the scale would
    change the fitted parameters or the W-scores visibly.
    """
    return np.vectorize(function, otypes=[np.float64])(values)


def _seqsum(values):
    """Sum over the last axis strictly left to right, like libMR's C loops (numpy's sum is pairwise)."""
    return np.cumsum(values, axis=-1)[..., -1]


def _scale_likelihood(sigma, x0, mean_x0):
    """libMR ``weibull_scale_likelihood``: `(m,)` values of the MLE equation for sigma."""
    weights = np.exp(x0 / sigma[:, None])
    return (sigma + mean_x0) - _seqsum(weights * x0) / _seqsum(weights)


def _weibull_fit(data):
    """libMR ``weibull_fit`` on `(m, k)` shifted tails; returns `(scale, shape, codes)`, each `(m,)`."""
    m, k = data.shape
    codes = np.ones(m, dtype=np.int64)
    scale, shape = np.ones(m), np.ones(m)
    codes[np.any(data <= 0, axis=1)] = -1
    with np.errstate(all="ignore"):
        logs = _libm(math.log, np.where(data > 0, data, 1.0))
        max_log, min_log = logs.max(axis=1), logs.min(axis=1)
        value_range = max_log - min_log
        codes[(codes == 1) & ~(value_range > 0)] = -2
        ok = codes == 1
        if not np.any(ok):
            return scale, shape, codes
        logs, max_log, value_range = logs[ok], max_log[ok], value_range[ok]
        n = float(k)
        x0 = (logs - max_log[:, None]) / value_range[:, None]
        mean = _seqsum(x0) / n
        centred = x0 - mean[:, None]
        sigma0 = (math.sqrt(6.0) * np.sqrt(_seqsum(centred * centred) / (n - 1))) / math.pi
        mean_x0 = _seqsum(x0 / n)
        lower, upper, bracket_codes = _bracket(sigma0, x0, mean_x0)
        sigma, root_codes = _wdfzero(lower, upper, x0, mean_x0, bracket_codes)
        mu = sigma * _libm(math.log, _seqsum(np.exp(x0 / sigma[:, None])) / n)
        log_scale, inverse_shape = (value_range * mu) + max_log, value_range * sigma
        root_codes[(root_codes == 1) & (inverse_shape <= 0)] = -5
        scale[ok], shape[ok] = _libm(math.exp, log_scale), 1.0 / inverse_shape
        finite = np.isfinite(scale[ok]) & np.isfinite(shape[ok]) & (scale[ok] > 0)
        root_codes[(root_codes == 1) & ~finite] = -11
        codes[ok] = root_codes
    return scale, shape, codes


def _bracket(sigma0, x0, mean_x0):
    """libMR's search band for the likelihood root: halve or double from `sigma0` until the sign changes."""
    m = sigma0.shape[0]
    codes = np.ones(m, dtype=np.int64)
    down = _scale_likelihood(sigma0, x0, mean_x0) > 0
    lower = np.where(down, 0.5 * sigma0, sigma0)
    upper = np.where(down, sigma0, 2.0 * sigma0)
    active = np.ones(m, dtype=bool)
    while np.any(active):
        idx = np.flatnonzero(active)
        probe = np.where(down[idx], lower[idx], upper[idx])
        value = _scale_likelihood(probe, x0[idx], mean_x0[idx])
        step = np.where(down[idx], value > 0, value < 0)
        active[idx[~step]] = False
        idx = idx[step]
        halve, double = idx[down[idx]], idx[~down[idx]]
        upper[halve] = lower[halve]
        lower[halve] = 0.5 * upper[halve]
        lower[double] = upper[double]
        upper[double] = 2.0 * lower[double]
        failed = np.concatenate(
            [halve[lower[halve] < _FULL_PRECISION_MIN], double[upper[double] > _FULL_PRECISION_MAX]]
        )
        codes[failed] = -3
        active[failed] = False
    return lower, upper, codes


def _wdfzero(lower, upper, x0, mean_x0, codes):
    """libMR ``wdfzero`` (Brent/Dekker) on `(m,)` bands, vectorised; returns `(sigma, codes)`."""
    codes = codes.copy()
    a, b = lower.copy(), upper.copy()
    fa = _scale_likelihood(a, x0, mean_x0)
    fb = _scale_likelihood(b, x0, mean_x0)
    ok = codes == 1
    at_a = ok & (fa == 0)
    b[at_a] = a[at_a]
    fb[at_a] = 0.0
    codes[ok & ~at_a & (fb != 0) & ((fa > 0) == (fb > 0))] = -4
    c, d, e = np.zeros_like(a), np.zeros_like(a), np.zeros_like(a)
    # libMR reads p and q uninitialised when its first step is a bisection; zero keeps that bisection.
    p, q = np.zeros_like(a), np.zeros_like(a)
    fc = fb.copy()
    active = (codes == 1) & (fb != 0)
    for _ in range(_MAX_ROOT_ITERATIONS):
        if not np.any(active):
            break
        i = np.flatnonzero(active)
        ai, bi, ci, di, ei = a[i], b[i], c[i], d[i], e[i]
        fai, fbi, fci, pi, qi = fa[i], fb[i], fc[i], p[i], q[i]
        # Keep c on the other side of the root from b.
        same = (fbi > 0) == (fci > 0)
        ci = np.where(same, ai, ci)
        fci = np.where(same, fai, fci)
        di = np.where(same, bi - ai, di)
        ei = np.where(same, di, ei)
        # Make b the best point so far (smallest |f|).
        swap = np.abs(fci) < np.abs(fbi)
        ai, bi, ci = np.where(swap, bi, ai), np.where(swap, ci, bi), np.where(swap, bi, ci)
        fai, fbi, fci = np.where(swap, fbi, fai), np.where(swap, fci, fbi), np.where(swap, fbi, fci)
        half = 0.5 * (ci - bi)
        tolerance = 2.0 * _TOL * np.maximum(np.abs(bi), 1.0)
        done = (np.abs(half) <= tolerance) | (fbi == 0.0)
        bisect = (np.abs(ei) < tolerance) | (np.abs(fai) <= np.abs(fbi))
        s = fbi / fai
        linear = ai == ci
        q_ratio = fai / fci
        r = fbi / fci
        p_interp = np.where(
            linear,
            2.0 * half * s,
            s * (2.0 * half * q_ratio * (q_ratio - r) - (bi - ai) * (r - 1.0)),
        )
        q_interp = np.where(linear, 1.0 - s, (q_ratio - 1.0) * (r - 1.0) * (s - 1.0))
        positive = p_interp > 0
        q_interp = np.where(positive, -q_interp, q_interp)
        p_interp = np.where(positive, p_interp, -p_interp)
        pi = np.where(bisect, pi, p_interp)
        qi = np.where(bisect, qi, q_interp)
        ei = np.where(bisect, half, ei)
        di = np.where(bisect, half, di)
        # libMR tests the interpolation step after a bisection too (with the last p and q).
        accept = (2.0 * pi < 3.0 * half * qi - np.abs(tolerance * qi)) & (pi < np.abs(0.5 * ei * qi))
        ei = np.where(accept, di, half)
        di = np.where(accept, pi / qi, half)
        new_a, new_fa = bi, fbi
        new_b = np.where(np.abs(di) > tolerance, bi + di, np.where(bi > ci, bi - tolerance, bi + tolerance))
        new_fb = _scale_likelihood(new_b, x0[i], mean_x0[i])
        keep = ~done
        a[i] = np.where(keep, new_a, ai)
        fa[i] = np.where(keep, new_fa, fai)
        b[i] = np.where(keep, new_b, bi)
        fb[i] = np.where(keep, new_fb, fbi)
        c[i], fc[i], d[i], e[i], p[i], q[i] = ci, fci, di, ei, pi, qi
        active[i] = keep & (fb[i] != 0)
    else:
        codes[active] = -10
    return b, codes
