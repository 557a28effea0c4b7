"""Statistics of a whole image's pixels at a fixed cost: a fixed random sample, and medians and percentiles equal
to NumPy's to the last bit, from one partition of what a bracket of sorted pilot values leaves."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE = 1 << 13  # pixels a statistic of a whole image is taken over
DIRECT = 1 << 10  # values up to which an order statistic is a plain partition of them all
PILOTS = 1 << 9  # values of a larger array sorted to bracket the ranks sought (Floyd & Rivest)
BRACKET = 3.0  # how far, in standard deviations of a pilot's rank, the bracket reaches past the ranks sought
MAD_TO_SIGMA = 1.4826  # a normal distribution's sigma per median absolute deviation (1 / Phi^-1(3/4))


def sample(values: np.ndarray) -> np.ndarray:
    """SAMPLE of the values at random places fixed once (the same image gives the same answer; a regular stride
    would alias with a regular pattern, ruled lines, a grid): enough for a median or a percentile of a whole
    image's pixels at a fixed cost whatever its size (docs/experiments.md, § The reader as named steps)."""
    values = values.ravel()
    if values.size <= SAMPLE:
        return values
    return values[sample_at(values.size)]


def sample_at(size: int) -> np.ndarray:
    """The SAMPLE positions `sample` takes of `size` values, in increasing order: the same share of the way along
    for every size."""
    return (sample_places() * size).astype(np.int64)


@lru_cache(maxsize=1)
def draws() -> np.ndarray:
    """SAMPLE uniform draws in [0, 1), from a fixed seed."""
    return np.random.default_rng(SAMPLE).random(SAMPLE)


@lru_cache(maxsize=1)
def sample_places() -> np.ndarray:
    """The draws in increasing order: picked in the order they lie in memory, a sample costs a quarter of the
    time it does in the order drawn (50 us on a photo), and what is taken of it (a median, a percentile, a
    correlation of aligned pairs) does not depend on its order."""
    return np.sort(draws())


def percentile(values: np.ndarray, q: float) -> float:
    """np.percentile(values, q) (its default, linear interpolation), to the last bit, by one partition: NumPy's
    own costs 30 us of checks around a 4 us selection on a digit's few thousand values."""
    return percentiles(values, (q,))[0]


def percentiles(values: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """percentile(values, q) for each q, all from one partition."""
    v = np.asarray(values).ravel()
    if v.size == 0:
        return tuple(float(np.percentile(v, q)) for q in qs)  # NumPy's own answer for nothing
    at = [q / 100 * (v.size - 1) for q in qs]
    los = [int(np.floor(a)) for a in at]
    his = [min(lo + 1, v.size - 1) for lo in los]
    part = order_stats(v, los + his)
    out = []
    for a_t, lo, hi in zip(at, los, his):
        a, b, t = part[lo], part[hi], a_t - lo
        out.append(float(b - (b - a) * (1 - t)) if t >= 0.5 else float(a + (b - a) * t))  # NumPy's two-sided lerp
    return tuple(out)


def median(values: np.ndarray) -> float:
    """np.median(values), to the last bit, by one partition (without NumPy's checks around it)."""
    v = np.asarray(values).ravel()
    if v.size == 0:
        return float(np.median(v))  # NumPy's own answer for nothing
    k = v.size // 2
    part = order_stats(v, [k - 1, k] if v.size % 2 == 0 else [k])
    return float(part[k]) if v.size % 2 else float((part[k - 1] + part[k]) / 2)


def order_stats(v: np.ndarray, ks: list[int]) -> dict[int, np.floating]:
    """{k: the k-th smallest of v (1-d), as np.partition(v, k)[k]} for each rank k. A large array is not
    partitioned whole: ranks close together are bracketed by two values of a sorted sample of PILOTS of it, and
    only what lies between those is partitioned (Floyd & Rivest 1975). Comparing every value to the bracket is
    a vector operation, where a partition branches on each value: the median of 8,000 of a photo's values in
    50 instead of 85 us. Where a bracket misses its ranks (rarely, by chance), the array is partitioned whole."""
    ks = sorted(set(ks))
    if v.size <= DIRECT:
        part = np.partition(v, ks)
        return {k: part[k] for k in ks}
    pilots = np.sort(v[pilot_at(v.size)])
    reach = BRACKET * np.sqrt(PILOTS) / 2  # pilots: a rank's place among them has at most sqrt(PILOTS)/2 sd
    out: dict[int, np.floating] = {}
    for group in close_ranks(ks, v.size):
        lo_at = int(np.floor(group[0] / v.size * PILOTS - reach))
        hi_at = int(np.ceil(group[-1] / v.size * PILOTS + reach))
        lo = pilots[lo_at] if lo_at >= 0 else -np.inf  # a bracket past either end is open on that side
        hi = pilots[hi_at] if hi_at < PILOTS else np.inf
        below = int(np.count_nonzero(v < lo))
        middle = v[(v >= lo) & (v <= hi)]
        if not (below <= group[0] and group[-1] < below + middle.size):
            part = np.partition(v, group)  # missed (or NaNs in the way): the whole array
            out.update({k: part[k] for k in group})
            continue
        part = np.partition(middle, [k - below for k in group])
        out.update({k: part[k - below] for k in group})
    return out


def close_ranks(ks: list[int], size: int) -> list[list[int]]:
    """Sorted ranks in groups that one bracket covers: neighbours at most a pilot's spacing apart."""
    groups = [[ks[0]]]
    for k in ks[1:]:
        if k - groups[-1][-1] <= size // PILOTS:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


def pilot_at(size: int) -> np.ndarray:
    """PILOTS positions among `size` at random places fixed once (the first draws, in the order drawn), so that
    an array in any order is sampled without bias."""
    return (draws()[:PILOTS] * size).astype(np.int64)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two equally long arrays (nan where either is constant)."""
    a, b = a.astype(np.float64) - a.mean(dtype=np.float64), b.astype(np.float64) - b.mean(dtype=np.float64)
    norm = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / norm if norm > 0 else float("nan")
