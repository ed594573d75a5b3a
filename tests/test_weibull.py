"""keras_crosr.weibull against libmr 0.1.9 itself: fitted parameters, W-scores and failures."""

import sys

import numpy as np
import pytest

from keras_crosr.weibull import FAILURE_REASONS, WeibullFitError, WeibullModel, fit_high

try:
    import libmr
except ImportError:  # CI installs it (setup.py extra "test"); the comparisons cannot run without it
    libmr = None

needs_libmr = pytest.mark.skipif(
    libmr is None,
    reason="libmr is not importable: pip install numpy cython && pip install --no-build-isolation libmr==0.1.9",
)

RTOL = 1e-6
# W-scores near 0 are 1 - exp(-z) for tiny z: any two float64 evaluations (libMR's included) differ there
# by ~1e-16 absolute, which is a large *relative* difference; 1e-12 absolute covers that and nothing else.
W_ATOL = 1e-12


def libmr_fit(data, tail_size, translate_amount):
    """libmr's `(scale, shape, sign, translate_amount, small_score)`, or None where its fit is invalid."""
    mr = libmr.MR(translate_amount=int(translate_amount))
    mr.fit_high(np.asarray(data, dtype=np.float64), tail_size)
    return mr if mr.is_valid else None


def random_tails(seed, count):
    """`count` `(data, tail_size)` pairs from varied distributions, scales and signs."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        tail_size = int(rng.integers(2, 60))
        n = tail_size + int(rng.integers(0, 200))
        kind = i % 6
        if kind == 0:
            data = rng.weibull(rng.uniform(0.3, 10), n) * rng.uniform(0.01, 100)
        elif kind == 1:
            data = rng.normal(0, 1, n) * 10 ** rng.uniform(-8, 8)
        elif kind == 2:  # ties
            data = rng.integers(0, 6, n).astype(np.float64)
        elif kind == 3:  # negative values
            data = rng.exponential(1, n) * 10 ** rng.uniform(-3, 3) - 50
        elif kind == 4:  # tiny range
            data = rng.uniform(0, 1, n) * 10 ** rng.uniform(-12, -6) + rng.uniform(-5, 5)
        else:  # heavy tails
            data = rng.standard_cauchy(n)
        cases.append((data, tail_size))
    return cases


def probe_points(data, rng):
    """Scores to evaluate W-scores at: the data, points around and far beyond it, and below the tail."""
    spread = np.ptp(data) / 4 + 1e-12
    return np.concatenate([data, rng.normal(np.median(data), 3 * spread, 40), [np.min(data) - 10 * spread]])


def assert_same_model(ours, index, mr, points):
    scale, shape, sign, translate_amount, small_score = mr.get_params()
    np.testing.assert_allclose(ours.scale[index], scale, rtol=RTOL)
    np.testing.assert_allclose(ours.shape[index], shape, rtol=RTOL)
    assert ours.sign[index] == sign
    assert ours.translate_amount[index] == translate_amount
    assert ours.small_score[index] == small_score
    expected = np.array([mr.w_score(x) for x in points])
    scores = np.zeros((points.shape[0], ours.n_models))
    scores[:, index] = points
    np.testing.assert_allclose(ours.w_score(scores)[:, index], expected, rtol=RTOL, atol=W_ATOL)
    np.testing.assert_allclose(ours.cdf(scores)[:, index], [mr.cdf(x) for x in points], rtol=RTOL, atol=W_ATOL)


@needs_libmr
@pytest.mark.parametrize("translate_amount", [1, 10000])
def test_random_tails_match_libmr(translate_amount):
    rng = np.random.default_rng(translate_amount)
    cases = random_tails(seed=translate_amount, count=240)
    references = [libmr_fit(data, k, translate_amount) for data, k in cases]
    valid = [i for i, mr in enumerate(references) if mr is not None]
    assert len(valid) > 150
    # One vectorised call per tail size, for all the data sets (of different lengths) with that tail size.
    for tail_size in sorted({cases[i][1] for i in valid}):
        group = [i for i in valid if cases[i][1] == tail_size]
        ours = fit_high([cases[i][0] for i in group], tail_size, translate_amount=translate_amount)
        assert ours.n_models == len(group)
        for j, i in enumerate(group):
            assert_same_model(ours, j, references[i], probe_points(cases[i][0], rng))
    for i, mr in enumerate(references):
        if mr is None:
            with pytest.raises(WeibullFitError):
                fit_high(cases[i][0], cases[i][1], translate_amount=translate_amount)


# libmr 0.1.9's own numbers for three small fixed tails, recorded with it (MR(translate_amount=t).fit_high,
# get_params() and w_score at PROBES), so that fit_high is checked against libMR where libmr is not installed.
GOLDEN_TAILS = {
    "distances": ([0.42, 1.37, 0.88, 2.95, 1.02, 3.61, 0.15, 2.2, 1.74, 4.08, 0.67, 2.58], 8),
    "negative": ([-3.5, -1.25, -7.0, -0.5, -2.75, -4.0, -0.05, -1.9], 5),
    "heavy": ([0.9, 1.1, 1.3, 1.2, 2.0, 8.5, 1.05, 30.0, 1.6, 0.95, 4.2, 120.0, 1.4, 2.7], 12),
}
GOLDEN_PROBES = {
    "distances": [0.0, 1.5, 2.5, 3.0, 4.0, 6.0],
    "negative": [-8.0, -3.0, -2.0, -1.0, 0.0, 2.0],
    "heavy": [0.5, 1.5, 3.0, 10.0, 50.0, 200.0],
}
# (translate_amount, name): ((scale, shape, sign, translate_amount, small_score), w_scores at the probes)
GOLDEN_LIBMR = {
    (1, "distances"): (
        (2.7374242159302016, 2.6579320811975164, 1, 1, 1.02),
        [0.0, 0.17719632448383082, 0.5365842754037915, 0.7144011787390552, 0.9330695087920274, 0.9996577007831253],
    ),
    (1, "negative"): (
        (2.768875084450749, 2.8765513584723137, 1, 1, -2.75),
        [0.0, 0.023080132849613744, 0.23446433362757957, 0.624882538583554, 0.9086344151720426, 0.9997206515061302],
    ),
    (1, "heavy"): (
        (7.525615431975976, 0.5731447136930745, 1, 1, 1.05),
        [0.18045088892968975, 0.32235812694500743, 0.44269508433333515, 0.6907412651114142, 0.948120843058241,
         0.9985727768103448],
    ),
    (10000, "distances"): (
        (10001.932613483685, 10533.72266247593, 1, 10000, 1.02),
        [0.04361842844356856, 0.19470347767685037, 0.4625048186460009, 0.6504721916231488, 0.9508679251693469,
         0.9999999999822107],
    ),
    (10000, "negative"): (
        (10001.929995534581, 12258.113984550304, 1, 10000, -2.75),
        [0.00015030302043361754, 0.06677707057962323, 0.209784552317279, 0.5515855851677152, 0.9348935414408248,
         0.9999999999999826],
    ),
    (10000, "heavy"): (
        (10033.21852963025, 209.15964736259434, 1, 10000, 1.05),
        [0.38984017533564963, 0.39617836329173894, 0.40580800423641505, 0.4526034195295633, 0.7503667334578803,
         0.9999999999999569],
    ),
}


@pytest.mark.parametrize("translate_amount, name", sorted(GOLDEN_LIBMR), ids=lambda v: str(v))
def test_fit_high_reproduces_recorded_libmr_numbers(translate_amount, name):
    """Runs without libmr: the default numpy backend against libMR's numbers recorded above."""
    data, tail_size = GOLDEN_TAILS[name]
    (scale, shape, sign, translate, small_score), w_scores = GOLDEN_LIBMR[translate_amount, name]
    ours = fit_high(np.array(data), tail_size, translate_amount=translate_amount)
    assert ours.n_models == 1
    np.testing.assert_allclose(ours.scale[0], scale, rtol=RTOL)
    np.testing.assert_allclose(ours.shape[0], shape, rtol=RTOL)
    assert ours.sign[0] == sign and ours.translate_amount[0] == translate and ours.small_score[0] == small_score
    probes = np.array(GOLDEN_PROBES[name])[:, None]
    np.testing.assert_allclose(ours.w_score(probes)[:, 0], w_scores, rtol=RTOL, atol=W_ATOL)


@needs_libmr
@pytest.mark.parametrize("translate_amount, name", sorted(GOLDEN_LIBMR), ids=lambda v: str(v))
def test_recorded_libmr_numbers_are_libmr_s(translate_amount, name):
    data, tail_size = GOLDEN_TAILS[name]
    mr = libmr_fit(data, tail_size, translate_amount)
    params, w_scores = GOLDEN_LIBMR[translate_amount, name]
    # 1e-12, not equality: libmr is compiled at install, and another compiler or libm may round differently
    assert mr.get_params() == pytest.approx(params, rel=1e-12)
    assert [mr.w_score(x) for x in GOLDEN_PROBES[name]] == pytest.approx(w_scores, rel=1e-12, abs=W_ATOL)


HARD_CASES = {
    "ties": (np.r_[np.full(15, 2.0), np.full(15, 1.0)], 20, 1),
    "one_outlier_then_ties": (np.r_[5.0, np.full(29, 1.0)], 20, 1),
    "tiny_range": (1.0 + np.arange(30) * 1e-13, 20, 1),
    "tiny_range_large_translate": (1.0 + np.arange(30) * 1e-9, 20, 10000),
    "tiny_spread_near_zero_large_translate": (np.arange(30.0) * 1e-12, 20, 10000),
    "huge_range": (np.logspace(-300, 300, 30), 20, 1),
    "one_huge_value": (np.r_[1e300, np.arange(29.0)], 20, 1),
    "negative": (-np.arange(30.0) - 100, 20, 1),
    "tail_size_equals_data_size": (np.arange(20.0), 20, 1),
    "tail_size_2": (np.arange(20.0), 2, 1),
    # libMR fails on these:
    "all_equal": (np.full(30, 3.0), 20, 1),
    "equal_top_of_tail": (np.r_[np.full(25, 7.0), np.arange(5.0)], 20, 1),
    "huge_values_lose_the_shift": (1e20 + np.arange(30) * 1e6, 20, 1),
    "zero_translate": (np.arange(30.0), 20, 0),
    "negative_translate": (np.arange(30.0), 20, -3),
    "denormal_spread": (np.arange(30.0) * 1e-300, 20, 1),
}
EXPECTED_CODES = {
    "all_equal": -2,
    "equal_top_of_tail": -2,
    "huge_values_lose_the_shift": -1,
    "zero_translate": -1,
    "negative_translate": -1,
    "denormal_spread": -2,
}


@needs_libmr
@pytest.mark.parametrize("name", sorted(HARD_CASES))
def test_hard_cases_match_libmr(name):
    data, tail_size, translate_amount = HARD_CASES[name]
    mr = libmr_fit(data, tail_size, translate_amount)
    if name in EXPECTED_CODES:
        assert mr is None, "libMR was expected to fail here"
        with pytest.raises(WeibullFitError) as info:
            fit_high(data, tail_size, translate_amount=translate_amount)
        assert info.value.codes.tolist() == [EXPECTED_CODES[name]]
        assert FAILURE_REASONS[EXPECTED_CODES[name]] in str(info.value)
    else:
        assert mr is not None
        ours = fit_high(data, tail_size, translate_amount=translate_amount)
        assert_same_model(ours, 0, mr, probe_points(data, np.random.default_rng(0)))


@needs_libmr
def test_failed_fit_raises_where_libmr_returns_minus_9999():
    """The documented policy: libMR silently scores -9999 after a failed fit; we raise instead."""
    data = np.full(30, 3.0)
    mr = libmr.MR()
    mr.fit_high(data, 20)
    assert mr.w_score(4.0) == -9999.0
    with pytest.raises(WeibullFitError, match="-9999") as info:
        fit_high([np.arange(30.0), data, np.arange(40.0)], 20)
    assert info.value.failed.tolist() == [1]
    assert info.value.codes.tolist() == [1, -2, 1]
    assert "model 1" in str(info.value)


@needs_libmr
def test_tail_shorter_than_tail_size_raises_like_libmr():
    with pytest.raises(ValueError, match="larger than the data size"):
        libmr.MR().fit_high(np.arange(10.0), 20)
    with pytest.raises(ValueError, match="tail_size 20 is larger than the data size 10"):
        fit_high(np.arange(10.0), 20)
    with pytest.raises(ValueError, match="model 1: tail_size 20 is larger than the data size 19"):
        fit_high([np.arange(30.0), np.arange(19.0)], 20)


@needs_libmr
def test_libmr_backend_gives_the_same_model():
    rng = np.random.default_rng(3)
    data = rng.gamma(2.0, 1.5, size=(6, 500))
    ours = fit_high(data, 20, translate_amount=1)
    theirs = fit_high(data, 20, translate_amount=1, backend="libmr")
    for name in ("shape", "scale", "translate_amount", "small_score", "sign"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=RTOL)
    x = rng.gamma(2.0, 3.0, size=(100, 6))
    np.testing.assert_allclose(ours.w_score(x), theirs.w_score(x), rtol=RTOL, atol=W_ATOL)
    with pytest.raises(WeibullFitError, match="libmr marked the fit invalid"):
        fit_high([np.full(30, 2.0)], 20, backend="libmr")
    with pytest.raises(ValueError, match="as an int"):
        fit_high(data, 20, translate_amount=1.5, backend="libmr")


def test_libmr_backend_import_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "libmr", None)
    with pytest.raises(ImportError, match="pip install --no-build-isolation libmr"):
        fit_high(np.arange(30.0), 20, backend="libmr")


def test_w_score_follows_the_weibull_cdf_by_hand():
    model = WeibullModel(shape=[2.0, 0.5], scale=[3.0, 1.5], translate_amount=[1.0, 10.0], small_score=[4.0, -2.0])
    x = np.array([[5.0, 1.0], [2.0, -20.0], [3.0, -12.0]])
    shifted = np.array([[5.0 + 1.0 - 4.0, 1.0 + 10.0 + 2.0], [2.0 + 1.0 - 4.0, -20.0 + 10.0 + 2.0], [0.0, 0.0]])
    expected = 1.0 - np.exp(-((np.maximum(shifted, 0) / [3.0, 1.5]) ** [2.0, 0.5]))
    np.testing.assert_allclose(model.w_score(x), expected, rtol=1e-15)
    assert model.w_score(x)[1, 0] == 0.0 and model.w_score(x)[1, 1] == 0.0
    # broadcasting: one column scored by every model
    np.testing.assert_array_equal(model.w_score(x[:, :1]), model.w_score(np.repeat(x[:, :1], 2, axis=1)))
    assert np.isnan(model.w_score([[np.nan, 0.0]])[0, 0])
    np.testing.assert_array_equal(model.w_score(5.0), model.w_score([[5.0, 5.0]])[0])  # a scalar: every model
    with pytest.raises(ValueError, match=r"must broadcast to \(\.\.\., 2\), got shape \(3,\)"):
        model.w_score([1.0, 2.0, 3.0])


def test_w_score_is_elementwise_so_batching_does_not_matter():
    rng = np.random.default_rng(1)
    model = fit_high(rng.gamma(2.0, 1.0, size=(4, 300)), 20)
    x = rng.gamma(2.0, 2.0, size=(257, 4))
    full = model.w_score(x)
    np.testing.assert_array_equal(np.concatenate([model.w_score(x[i : i + 10]) for i in range(0, 257, 10)]), full)
    order = rng.permutation(257)
    np.testing.assert_array_equal(model.w_score(x[order]), full[order])


def test_fit_high_uses_the_largest_values_only():
    rng = np.random.default_rng(2)
    data = rng.normal(size=400)
    top = np.sort(data)[-20:]
    a, b = fit_high(data, 20), fit_high(rng.permutation(np.r_[top, top.min() - rng.uniform(0, 5, 50)]), 20)
    for name in ("shape", "scale", "small_score"):
        assert getattr(a, name)[0] == getattr(b, name)[0]
    assert a.small_score[0] == top.min()


def test_fit_high_shapes_and_models():
    rng = np.random.default_rng(4)
    data = rng.gamma(3.0, 1.0, size=(3, 100))
    model = fit_high(data, 20)
    assert model.n_models == 3 and model.shape.shape == (3,)
    single = fit_high(data[1], 20)
    assert single.n_models == 1 and single.scale[0] == model.scale[1]
    ragged = fit_high([data[0], data[1][:50], data[2][:21]], 20)
    assert ragged.n_models == 3 and ragged.shape[0] == model.shape[0]
    from_list = fit_high(data[2].tolist(), 20)  # a plain list of scores is one model, as in libmr
    assert from_list.n_models == 1 and from_list.shape[0] == model.shape[2]
    assert repr(model) == "WeibullModel(n_models=3)"
    assert model.w_score(rng.normal(size=(5, 3))).shape == (5, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data": np.arange(30.0), "tail_size": 1}, "tail_size"),
        ({"data": np.arange(30.0), "tail_size": 2.5}, "tail_size"),
        ({"data": np.arange(30.0), "tail_size": True}, "tail_size"),
        ({"data": np.r_[np.arange(29.0), np.nan], "tail_size": 20}, "finite"),
        ({"data": np.r_[np.arange(29.0), np.inf], "tail_size": 20}, "finite"),
        ({"data": np.zeros((2, 2, 30)), "tail_size": 20}, "1-D or 2-D"),
        ({"data": np.zeros((0, 30)), "tail_size": 20}, "no models"),
        ({"data": [], "tail_size": 20}, "larger than the data size 0"),
        ({"data": np.arange(30.0), "tail_size": 20, "translate_amount": np.nan}, "translate_amount"),
        ({"data": np.arange(30.0), "tail_size": 20, "backend": "scipy"}, "backend"),
    ],
)
def test_fit_high_rejects_bad_arguments(kwargs, message):
    data = kwargs.pop("data")
    with pytest.raises(ValueError, match=message):
        fit_high(data, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shape": [[1.0]]}, "1-D"),
        ({"scale": [1.0, 2.0]}, r"shape \(1,\)"),
        ({"shape": [0.0]}, "> 0"),
        ({"scale": [-1.0]}, "> 0"),
        ({"small_score": [np.nan]}, "finite"),
        ({"sign": [0.5]}, r"\+1 or -1"),
    ],
)
def test_weibull_model_validates_its_parameters(kwargs, message):
    params = {"shape": [1.0], "scale": [1.0], "translate_amount": 1.0, "small_score": [0.0], "sign": 1.0}
    params.update(kwargs)
    with pytest.raises(ValueError, match=message):
        WeibullModel(**params)


def test_w_score_checks_the_number_of_models():
    model = WeibullModel([1.0, 2.0], [1.0, 1.0], 1.0, [0.0, 0.0])
    with pytest.raises(ValueError, match=r"broadcast to \(\.\.\., 2\)"):
        model.w_score(np.zeros((4, 3)))
