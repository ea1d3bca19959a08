"""The NetSuite sandbox's latency profiles: how long the account takes to answer a request, fixed or long-tailed.

A profile is written as ``KIND:PARAMETERS`` (``--latency-profile``):

    fixed:100                               every request takes 100 ms
    lognormal:median=800,p99=4000,seed=1    log-normal, half the requests under 800 ms, 1 in 100 over 4 s

Real NetSuite accounts answer a sales-order write in around a second with a long tail: most requests close to
the median, a few several times slower (a heavy record, a busy shard). A log-normal has exactly that shape and
is fixed by two figures a person can check in a benchmark's output, the median and the p99:
``sigma = ln(p99 / median) / z99`` with ``z99`` the standard normal's 99th percentile. Draws come from a
``random.Random`` of their own, seeded (default 1), so a run's sequence of latencies repeats exactly; which
request gets which draw still depends on the order requests arrive in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

Z99 = NormalDist().inv_cdf(0.99)  # 2.3263…
KINDS = ("fixed", "lognormal")
EXAMPLES = "fixed:100 or lognormal:median=800,p99=4000,seed=1"


class LatencyProfileError(ValueError):
    """A profile that cannot be read; the message names the part that is wrong and shows the syntax."""


@dataclass(frozen=True)
class LatencyProfile:
    kind: str  # "fixed" | "lognormal"
    median_ms: float
    p99_ms: float  # equal to median_ms for "fixed"
    seed: int = 1

    @property
    def sigma(self) -> float:
        """The log-normal's shape: 0 for a fixed latency."""
        return math.log(self.p99_ms / self.median_ms) / Z99 if self.median_ms else 0.0

    @property
    def mean_ms(self) -> float:
        """The expected latency: a log-normal's mean is its median times exp(sigma² / 2)."""
        return self.median_ms * math.exp(self.sigma ** 2 / 2)

    def spec(self) -> str:
        """The profile as it would be written on the command line."""
        if self.kind == "fixed":
            return f"fixed:{self.median_ms:g}"
        return f"lognormal:median={self.median_ms:g},p99={self.p99_ms:g},seed={self.seed}"

    def sampler(self) -> Callable[[], float]:
        """A function returning the next latency in seconds; each sampler draws from its own seeded generator."""
        if self.kind == "fixed" or not self.median_ms:
            seconds = self.median_ms / 1000
            return lambda: seconds
        draws = random.Random(self.seed)
        mu, sigma = math.log(self.median_ms / 1000), self.sigma
        return lambda: draws.lognormvariate(mu, sigma)


NO_LATENCY = LatencyProfile("fixed", 0.0, 0.0)


def fixed(milliseconds: float) -> LatencyProfile:
    if not (isinstance(milliseconds, (int, float)) and math.isfinite(milliseconds) and milliseconds >= 0):
        raise LatencyProfileError(f"a fixed latency is a non-negative number of milliseconds (got {milliseconds!r})")
    return LatencyProfile("fixed", float(milliseconds), float(milliseconds))


def parse_latency_profile(text: str) -> LatencyProfile:
    """``fixed:MS`` or ``lognormal:median=MS,p99=MS[,seed=N]`` → a profile; a clear error for anything else."""
    kind, colon, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS or not colon:
        raise LatencyProfileError(f"latency profile {text!r}: give KIND:PARAMETERS with KIND one of "
                                  f"{', '.join(KINDS)}, e.g. {EXAMPLES}")
    if kind == "fixed":
        return fixed(_milliseconds(text, "fixed", rest))
    params: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in rest.split(","))):
        name, equals, value = part.partition("=")
        name = name.strip().lower()
        if not equals or name not in ("median", "p99", "seed"):
            raise LatencyProfileError(f"latency profile {text!r}: {part!r} is not one of median=MS, p99=MS, seed=N")
        if name in params:
            raise LatencyProfileError(f"latency profile {text!r}: {name} is given twice")
        params[name] = value.strip()
    if missing := [name for name in ("median", "p99") if name not in params]:
        raise LatencyProfileError(f"latency profile {text!r}: lognormal needs {' and '.join(missing)}, "
                                  f"e.g. lognormal:median=800,p99=4000")
    median, p99 = _milliseconds(text, "median", params["median"]), _milliseconds(text, "p99", params["p99"])
    if median <= 0:
        raise LatencyProfileError(f"latency profile {text!r}: median must be above 0 ms (for none, give fixed:0)")
    if p99 <= median:
        raise LatencyProfileError(f"latency profile {text!r}: p99 ({p99:g} ms) must be above the median "
                                  f"({median:g} ms); for one latency for every request, give fixed:{median:g}")
    seed = params.get("seed", "1")
    if not seed.lstrip("-").isdigit():
        raise LatencyProfileError(f"latency profile {text!r}: seed must be a whole number (got {seed!r})")
    return LatencyProfile("lognormal", median, p99, int(seed))


def _milliseconds(text: str, name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise LatencyProfileError(f"latency profile {text!r}: {name} must be a non-negative number of "
                                  f"milliseconds (got {value.strip()!r})")
    return number
