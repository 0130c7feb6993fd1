"""Vectorised two-sample drift tests.

Every test takes prepared data (finite float arrays for numeric columns, aligned
count vectors for categorical ones) and returns a :class:`TestResult`. No test
loops over rows in Python; the costly parts are numpy passes (min/max, one
binning pass, cumulative sums) or scipy calls on whole arrays.

The formulas follow Evidently 0.7 (``evidently.legacy.calculations.stattests``),
so the same data gives the same verdicts:

- ``ks``            two-sample Kolmogorov-Smirnov, drift when p <= threshold (0.05)
- ``chisquare``     chi-square of current counts against reference shares, p < threshold (0.05)
- ``z``             two-proportion Z test (first sorted value vs the rest), p < threshold (0.05)
- ``wasserstein``   first Wasserstein distance / max(std(reference), 0.001), >= threshold (0.1)
- ``jensenshannon`` Jensen-Shannon distance (natural log) of the binned shares, >= threshold (0.1)
- ``psi``           population stability index of the binned shares, >= threshold (0.1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import DriftError

if TYPE_CHECKING:
    import numpy as np

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class Method:
    """A drift test: its name and title, the column kinds it applies to, its default
    threshold and how a score compares with the threshold (``rule``)."""

    name: str
    title: str
    kinds: tuple[str, ...]
    default_threshold: float
    # how the score compares with the threshold: "p<=", "p<" (p-values) or ">=" (distances)
    rule: str

    def drifted(self, score: float, threshold: float) -> bool:
        """Whether ``score`` means drift at ``threshold`` (p-values below it, distances at
        or above it)."""
        if self.rule == "p<=":
            return bool(score <= threshold)
        if self.rule == "p<":
            return bool(score < threshold)
        return bool(score >= threshold)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", "Kolmogorov-Smirnov", (NUMERIC,), 0.05, "p<="),
        Method("chisquare", "chi-square", (NUMERIC, CATEGORICAL), 0.05, "p<"),
        Method("z", "two-proportion Z", (NUMERIC, CATEGORICAL), 0.05, "p<"),
        Method("wasserstein", "Wasserstein (normed)", (NUMERIC,), 0.1, ">="),
        Method("jensenshannon", "Jensen-Shannon distance", (NUMERIC, CATEGORICAL), 0.1, ">="),
        Method("psi", "PSI", (NUMERIC, CATEGORICAL), 0.1, ">="),
    )
}
_ALIASES = {
    "kolmogorov-smirnov": "ks",
    "kolmogorov_smirnov": "ks",
    "chi2": "chisquare",
    "chi-square": "chisquare",
    "chi_square": "chisquare",
    "ztest": "z",
    "z-test": "z",
    "wasserstein_distance": "wasserstein",
    "js": "jensenshannon",
    "jensen-shannon": "jensenshannon",
    "jensen_shannon": "jensenshannon",
}


def get_method(name: str) -> Method:
    """The Method called ``name`` (case-insensitive, a few aliases); DriftError listing
    the methods otherwise."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return METHODS[key]
    except KeyError:
        raise DriftError(
            f"unknown drift method {name!r}; use one of: {', '.join(METHODS)}"
        ) from None


def method_for(name: str, kind: str, col: str) -> Method:
    """The Method called ``name`` after checking it fits a column of ``kind``; DriftError
    naming the column and the methods that fit otherwise."""
    m = get_method(name)
    if kind not in m.kinds:
        raise DriftError(
            f"method {m.name!r} works on numeric columns only and column {col!r} is "
            f"{kind}; pass method={{...}} per column, or one of: "
            + ", ".join(k for k, v in METHODS.items() if kind in v.kinds)
        )
    return m


@dataclass
class TestResult:
    """A test's statistic and, for hypothesis tests, its p-value."""

    statistic: float
    p_value: float | None

    @property
    def score(self) -> float:
        """What the threshold applies to: the p-value for tests, else the statistic."""
        return self.p_value if self.p_value is not None else self.statistic


# -- numeric preparation -------------------------------------------------------------

FINE_BINS = 12_800  # fine uniform bins: Wasserstein bounds, unique-value checks, plots
EXACT_BELOW = 200_000  # below this many values in total, distances are computed exactly


@dataclass
class NumericPair:
    """A finite reference and current sample plus one shared fine histogram of both."""

    ref: np.ndarray
    cur: np.ndarray
    lo: float
    hi: float
    ref_counts: np.ndarray  # FINE_BINS counts over [lo, hi]
    cur_counts: np.ndarray

    @property
    def width(self) -> float:
        """The width of one fine bin."""
        return (self.hi - self.lo) / FINE_BINS

    def nonzero_bins(self, which: str = "both") -> int:
        """How many fine bins hold values of the reference (``which="ref"``) or of
        either sample (``"both"``)."""
        import numpy as np

        if which == "ref":
            return int(np.count_nonzero(self.ref_counts))
        return int(np.count_nonzero(self.ref_counts + self.cur_counts))


def uniform_counts(values: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Counts of ``values`` in ``bins`` equal bins over [lo, hi] (the last bin closed),
    in one O(n) pass instead of np.histogram's searchsorted."""
    import numpy as np

    if hi <= lo:
        out = np.zeros(bins, dtype=np.int64)
        out[0] = values.size
        return out
    scaled = values - lo
    scaled *= bins / (hi - lo)
    idx = scaled.astype(np.intp)
    del scaled
    np.clip(idx, 0, bins - 1, out=idx)
    return np.bincount(idx, minlength=bins)


def numeric_pair(ref: np.ndarray, cur: np.ndarray) -> NumericPair:
    """Bin both (already finite) samples on one fine grid over their joint range."""
    lo = float(min(ref.min(), cur.min()))
    hi = float(max(ref.max(), cur.max()))
    return NumericPair(
        ref,
        cur,
        lo,
        hi,
        uniform_counts(ref, lo, hi, FINE_BINS),
        uniform_counts(cur, lo, hi, FINE_BINS),
    )


def count_unique(values: np.ndarray) -> int:
    """The number of distinct values (NaN counts once)."""
    import pandas as pd

    return int(pd.unique(values).size)


def numeric_unique_at_most(pair: NumericPair, limit: int, which: str = "both") -> int | None:
    """The exact number of unique values if it is <= limit, else None. Uses the fine
    histogram first: more non-empty bins than ``limit`` proves more unique values."""
    import numpy as np

    if pair.nonzero_bins(which) > limit:
        return None
    values = pair.ref if which == "ref" else np.concatenate([pair.ref, pair.cur])
    n = count_unique(values)
    return n if n <= limit else None


def value_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Union of values (no NaN) and their counts on each side, aligned."""
    import numpy as np
    import pandas as pd

    rc = pd.Series(ref).value_counts(dropna=True, sort=False)
    cc = pd.Series(cur).value_counts(dropna=True, sort=False)
    return align_counts(rc, cc) if len(rc) or len(cc) else ([], np.zeros(0), np.zeros(0))


def align_counts(rc: Any, cc: Any) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Align two value_counts Series on the union of their keys."""
    import numpy as np

    both = rc.index.append(cc.index).unique()
    r = rc.reindex(both, fill_value=0).to_numpy(dtype=np.float64)
    c = cc.reindex(both, fill_value=0).to_numpy(dtype=np.float64)
    return list(both), r, c


# -- the tests ---------------------------------------------------------------------


def ks(ref: np.ndarray, cur: np.ndarray) -> TestResult:
    """Two-sided two-sample Kolmogorov-Smirnov (scipy's exact/asymptotic choice)."""
    from scipy import stats

    res = stats.ks_2samp(ref, cur)
    return TestResult(float(res.statistic), float(res.pvalue))


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> TestResult:
    """Chi-square of current counts against reference counts scaled to the current size.
    A value absent from the reference makes the statistic infinite (p = 0), as in Evidently."""
    import numpy as np
    from scipy import stats

    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    expected = ref_counts * (n_cur / n_ref)
    if len(expected) < 2:
        return TestResult(0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (cur_counts - expected) ** 2 / expected
        terms = np.where((expected == 0) & (cur_counts == 0), 0.0, terms)
    stat = float(terms.sum())
    p = float(stats.chi2.sf(stat, len(expected) - 1)) if np.isfinite(stat) else 0.0
    return TestResult(stat, p)


def z_test(keys: list[Any], ref_counts: np.ndarray, cur_counts: np.ndarray) -> TestResult:
    """Two-proportion Z test of the share of everything but the first (sorted) value."""
    import numpy as np
    from scipy import stats

    present = (ref_counts > 0) | (cur_counts > 0)
    if (
        (ref_counts > 0).sum() == 1
        and (cur_counts > 0).sum() == 1
        and np.array_equal(ref_counts > 0, cur_counts > 0)
    ):
        return TestResult(0.0, 1.0)
    order = sorted(range(len(keys)), key=lambda i: _sort_key(keys[i]))
    first = next(i for i in order if present[i])
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    p1 = (n1 - ref_counts[first]) / n1
    p2 = (n2 - cur_counts[first]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denom = np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    if denom == 0:
        return TestResult(0.0, 1.0)
    z = float((p1 - p2) / denom)
    return TestResult(z, float(2 * stats.norm.sf(abs(z))))


def _sort_key(value: Any) -> tuple:
    # mixed-type columns: order by type name first so sorting never raises
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, "", float(value))
    try:
        import numpy as np

        if isinstance(value, np.number):
            return (0, "", float(value))
    except ImportError:  # pragma: no cover
        pass
    return (1, type(value).__name__, str(value))


def wasserstein_normed(pair: NumericPair, threshold: float | None = None) -> TestResult:
    """First Wasserstein distance divided by max(std(reference), 0.001).

    Large samples use the shared fine histogram: the distance is the integral of
    |F - G|, and on each bin it lies between bounds fixed by the CDFs at the bin edges.
    The estimate is exact whenever those bounds are tight; when they are loose (heavy
    tails) or straddle ``threshold``, the exact sort-based value is computed instead,
    so the verdict never depends on the binning."""
    import numpy as np

    norm = max(float(np.std(pair.ref)), 0.001)
    n_total = pair.ref.size + pair.cur.size
    if n_total <= EXACT_BELOW or pair.hi <= pair.lo:
        return TestResult(_wasserstein_exact(pair.ref, pair.cur) / norm, None)
    estimate = wasserstein_from_histogram(
        pair.ref_counts, pair.cur_counts, pair.ref.size, pair.cur.size, pair.width, norm, threshold
    )
    if estimate is None:
        return TestResult(_wasserstein_exact(pair.ref, pair.cur) / norm, None)
    return TestResult(estimate, None)


def wasserstein_from_histogram(
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    n_ref: int,
    n_cur: int,
    width: float,
    norm: float,
    threshold: float | None,
) -> float | None:
    """The normed W1 estimate from two fine histograms on one grid, or None when its
    bounds are loose (> 0.01 apart) or straddle ``threshold``: then only the exact value
    decides (see :func:`wasserstein_normed`)."""
    import numpy as np

    f = np.concatenate([[0.0], np.cumsum(ref_counts) / n_ref])
    g = np.concatenate([[0.0], np.cumsum(cur_counts) / n_cur])
    f_lo, f_hi, g_lo, g_hi = f[:-1], f[1:], g[:-1], g[1:]
    upper = np.maximum(np.abs(f_hi - g_lo), np.abs(f_lo - g_hi)).sum() * width / norm
    lower = np.maximum.reduce([np.zeros_like(f_lo), g_lo - f_hi, f_lo - g_hi]).sum() * width / norm
    estimate = (np.abs(f_lo - g_lo) + np.abs(f_hi - g_hi)).sum() * 0.5 * width / norm
    loose = (upper - lower) > 0.01
    straddles = threshold is not None and lower < threshold <= upper
    return None if loose or straddles else float(estimate)


def ks_from_statistic(d: float, n1: int, n2: int) -> TestResult:
    """Two-sided two-sample KS p-value of statistic ``d`` for sample sizes n1 and n2, as
    scipy's ``ks_2samp(method="auto")`` computes it: exact when both samples have at most
    10,000 values, Smirnov's asymptotic distribution otherwise."""
    import math

    import numpy as np
    from scipy import stats

    if max(n1, n2) <= 10_000:
        try:
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            ok, d_exact, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
            if ok:
                return TestResult(float(d_exact), float(np.clip(prob, 0, 1)))
        except ImportError:  # pragma: no cover - a scipy without the helper
            pass
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return TestResult(float(d), float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1)))


def _wasserstein_exact(u: np.ndarray, v: np.ndarray) -> float:
    """Exact W1 from the quantile functions: merge the step points i/n and j/m (in
    integer units of 1/(n*m)) and sum |Q_u - Q_v| over each piece."""
    import numpy as np

    u = np.sort(u)
    v = np.sort(v)
    n, m = u.size, v.size
    if n == m:
        return float(np.abs(u - v).mean())
    points = np.concatenate(
        [np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n]
    )
    points.sort(kind="stable")
    widths = np.diff(points, prepend=0)
    iu = (points + m - 1) // m - 1
    iv = (points + n - 1) // n - 1
    return float((widths * np.abs(u[iu] - v[iv])).sum() / (n * m))


def binned_shares(
    kind: str,
    pair: NumericPair | None,
    keys: list[Any] | None,
    ref_counts: np.ndarray | None,
    cur_counts: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Shares per bin as Evidently bins them for Jensen-Shannon and PSI: numeric columns
    with more than 20 unique reference values use Sturges' bins over the joint range,
    everything else one bin per value."""
    import numpy as np

    if kind == NUMERIC and pair is not None and numeric_unique_at_most(pair, 20, "ref") is None:
        n_all = pair.ref.size + pair.cur.size
        bins = int(np.ceil(np.log2(n_all) + 1))  # numpy's "sturges"
        r = uniform_counts(pair.ref, pair.lo, pair.hi, bins) / pair.ref.size
        c = uniform_counts(pair.cur, pair.lo, pair.hi, bins) / pair.cur.size
        return r, c
    if ref_counts is None or cur_counts is None:
        if pair is None:
            raise DriftError("binned_shares needs a numeric pair or value counts")
        keys, ref_counts, cur_counts = value_counts(pair.ref, pair.cur)
    return ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()


def jensen_shannon(ref_share: np.ndarray, cur_share: np.ndarray) -> TestResult:
    """Jensen-Shannon distance (natural log), as scipy.spatial.distance.jensenshannon."""
    import numpy as np
    from scipy.special import rel_entr

    p = ref_share / ref_share.sum()
    q = cur_share / cur_share.sum()
    m = (p + q) / 2.0
    js = (rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2.0
    return TestResult(float(np.sqrt(max(js, 0.0))), None)


def psi(ref_share: np.ndarray, cur_share: np.ndarray) -> TestResult:
    """Population stability index; empty bins get a tiny share first (as Evidently)."""
    import numpy as np

    r = _fill_zeroes(ref_share.astype(np.float64, copy=True))
    c = _fill_zeroes(cur_share.astype(np.float64, copy=True))
    return TestResult(float(((r - c) * np.log(r / c)).sum()), None)


def _fill_zeroes(share: np.ndarray) -> np.ndarray:
    nonzero = share[share != 0]
    if nonzero.size == 0:
        return share
    smallest = nonzero.min()
    share[share == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return share


# -- the default choice ---------------------------------------------------------------


def default_method(kind: str, n_reference: int, n_unique: int | None) -> str:
    """Evidently 0.7's default test. ``n_unique`` is the number of unique values of both
    samples together, or None when it is known to be above 5.

    Reference of <= 1000 values: numeric with > 5 unique -> ks; numeric with 3-5 unique
    or categorical with > 2 -> chisquare; <= 2 unique -> z.
    Larger reference: numeric with > 5 unique -> wasserstein; anything else -> jensenshannon.
    """
    many = n_unique is None or n_unique > 5
    if n_reference <= 1000:
        if kind == NUMERIC and many:
            return "ks"
        return "chisquare" if (n_unique is None or n_unique > 2) else "z"
    if kind == NUMERIC and many:
        return "wasserstein"
    return "jensenshannon"
