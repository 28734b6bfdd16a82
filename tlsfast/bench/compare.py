"""
``tlsfast bench compare A.json B.json``: per scenario and stack, the ratio of
B's median to A's and whether the difference is beyond the noise.

The verdict is pyperf's (``pyperf compare_to``): Student's two-sample t-test
with pooled variance on the per-repetition samples (per round for the engine
scenario), two-sided, at the 95 % level; the critical values of the t
distribution come from a table (:data:`T_CRITICAL_95`), so no scipy is
needed.  With fewer than two samples on either side there is no spread to
judge by, and the verdict is "not significant".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from tlsfast.bench.runner import STACKS, Result, Sample

# Two-sided 95 % critical values of Student's t distribution, t(0.975, df),
# for df = 1..30; beyond 30 the normal quantile 1.96 is within 2 %.
T_CRITICAL_95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_critical_95(df: int) -> float:
    if df < 1:
        raise ValueError("at least one degree of freedom")
    return T_CRITICAL_95[df - 1] if df <= len(T_CRITICAL_95) else 1.96


def t_score(a: list[float], b: list[float]) -> float:
    """Student's t for two independent samples, pooled variance (each of size >= 2)."""
    n1, n2 = len(a), len(b)
    difference = statistics.fmean(b) - statistics.fmean(a)
    pooled = ((n1 - 1) * statistics.variance(a) + (n2 - 1) * statistics.variance(b)) / (n1 + n2 - 2)
    if pooled == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / math.sqrt(pooled * (1 / n1 + 1 / n2))


def significant(a: list[float], b: list[float]) -> bool:
    """Whether ``a`` and ``b`` differ at the 95 % level (False below two samples each)."""
    if len(a) < 2 or len(b) < 2:
        return False
    return abs(t_score(a, b)) >= t_critical_95(len(a) + len(b) - 2)


@dataclass
class Change:
    """One metric of one stack in one scenario, from run A to run B."""

    median_a: float
    median_b: float
    significant: bool

    @property
    def ratio(self) -> float:
        return self.median_b / self.median_a if self.median_a else math.nan


def change(a: list[float], b: list[float]) -> Change:
    return Change(statistics.median(a), statistics.median(b), significant(a, b))


def verdict(c: Change, lower_is_better: bool, words: tuple[str, str] = ("faster", "slower")) -> str:
    """``words[0]`` when B is significantly better than A, ``words[1]`` when worse."""
    if not c.significant or c.median_a == c.median_b:
        return "not significant"
    better = (c.median_b < c.median_a) == lower_is_better
    return words[0] if better else words[1]


@dataclass
class Row:
    key: str
    title: str
    unit: str
    stack: str
    cpu: Change  # CPU µs per op (idle: KiB per connection)
    rate: Change | None  # ops per second (None for idle)
    idle: bool

    def verdicts(self) -> tuple[str, str]:
        if self.idle:
            return verdict(self.cpu, True, ("smaller", "larger")), ""
        assert self.rate is not None
        return verdict(self.cpu, True), verdict(self.rate, False)


def _by_stack(result: Result) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for sample in result.samples:
        out.setdefault(sample.stack, []).append(sample)
    return out


def compare(a: list[Result], b: list[Result]) -> list[Row]:
    """Rows for every (scenario key, stack) measured in both runs, in B's order."""
    before = {result.key: result for result in a}
    rows = []
    for result in b:
        if result.key not in before:
            continue
        old, new = _by_stack(before[result.key]), _by_stack(result)
        order = {stack: index for index, stack in enumerate(STACKS)}
        for stack in sorted(set(old) & set(new), key=lambda s: (order.get(s, len(order)), s)):
            idle = result.scenario == "idle"
            cpu = change([s.cpu_us_per_op for s in old[stack]], [s.cpu_us_per_op for s in new[stack]])
            rate = None if idle else change([s.rate for s in old[stack]], [s.rate for s in new[stack]])
            rows.append(Row(result.key, result.title, result.unit, stack, cpu, rate, idle))
    return rows


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two JSON documents' dicts
    (what to warn about: other TLS parameters, another CPU, ...)."""
    out = []
    for key in sorted(set(a) | set(b)):
        name = f"{prefix}{key}"
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += differences(x, y, name + ".")
        elif x != y:
            out.append(name)
    return out
