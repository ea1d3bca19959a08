"""The ERP sandbox's latency profiles: the syntax, its errors, and what a seeded long-tailed sampler draws."""

from __future__ import annotations

import argparse
import statistics

import pytest

from erpsync_dev.sandboxes.netsuite.cli import add_arguments, options_from_args
from erpsync_dev.sandboxes.netsuite.latency import LatencyProfile, LatencyProfileError, parse_latency_profile

VALID = [
    ("fixed:100", LatencyProfile("fixed", 100.0, 100.0)),
    ("fixed:0", LatencyProfile("fixed", 0.0, 0.0)),
    (" FIXED : 2.5 ", LatencyProfile("fixed", 2.5, 2.5)),
    ("lognormal:median=800,p99=4000,seed=1", LatencyProfile("lognormal", 800.0, 4000.0, 1)),
    ("lognormal:p99=4000, median=800", LatencyProfile("lognormal", 800.0, 4000.0, 1)),  # seed defaults to 1
    ("lognormal:median=100,p99=400,seed=7", LatencyProfile("lognormal", 100.0, 400.0, 7)),
]

INVALID = [
    ("100", "give KIND:PARAMETERS with KIND one of fixed, lognormal"),
    ("gamma:shape=2", "give KIND:PARAMETERS with KIND one of fixed, lognormal"),
    ("fixed:-5", "fixed must be a non-negative number of milliseconds (got '-5')"),
    ("fixed:fast", "fixed must be a non-negative number of milliseconds (got 'fast')"),
    ("fixed:nan", "fixed must be a non-negative number"),
    ("lognormal:median=800", "lognormal needs p99"),
    ("lognormal:", "lognormal needs median and p99"),
    ("lognormal:median=800,p95=2000", "'p95=2000' is not one of median=MS, p99=MS, seed=N"),
    ("lognormal:median=800,median=900,p99=4000", "median is given twice"),
    ("lognormal:median=0,p99=4000", "median must be above 0 ms"),
    ("lognormal:median=800,p99=800", "p99 (800 ms) must be above the median (800 ms)"),
    ("lognormal:median=800,p99=4000,seed=x", "seed must be a whole number (got 'x')"),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_valid_profiles(text: str, expected: LatencyProfile) -> None:
    profile = parse_latency_profile(text)
    assert profile == expected
    assert parse_latency_profile(profile.spec()) == profile  # what it prints reads back the same


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[t for t, _ in INVALID])
def test_invalid_profiles_name_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(LatencyProfileError) as raised:
        parse_latency_profile(text)
    assert message in str(raised.value)
    assert repr(text) in str(raised.value)


def test_lognormal_draws_have_the_median_and_p99_asked_for() -> None:
    profile = parse_latency_profile("lognormal:median=800,p99=4000,seed=3")
    draw = profile.sampler()
    sample = sorted(draw() * 1000 for _ in range(200_000))
    median, p99 = sample[len(sample) // 2], sample[int(len(sample) * 0.99)]
    # 200,000 draws: the sample quantiles are within about 1% (median) and 2% (p99) of the true ones.
    assert median == pytest.approx(800, rel=0.02)
    assert p99 == pytest.approx(4000, rel=0.04)
    assert statistics.fmean(sample) == pytest.approx(profile.mean_ms, rel=0.02)
    assert profile.mean_ms == pytest.approx(1016.3, abs=0.1)  # 800 · exp(σ²/2), σ = ln 5 / 2.3263
    assert min(sample) > 0


def test_a_seed_repeats_its_sequence_and_another_seed_does_not() -> None:
    one, again, other = (parse_latency_profile(f"lognormal:median=800,p99=4000,seed={seed}").sampler()
                         for seed in (1, 1, 2))
    first = [one() for _ in range(1000)]
    assert first == [again() for _ in range(1000)]
    assert first != [other() for _ in range(1000)]


def test_fixed_draws_are_the_fixed_latency() -> None:
    draw = parse_latency_profile("fixed:100").sampler()
    assert {draw() for _ in range(100)} == {0.1}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_command_line_takes_either_spelling_and_the_last_wins() -> None:
    assert options_from_args(parse()).latency == LatencyProfile("fixed", 0.0, 0.0)
    assert options_from_args(parse("--latency-ms", "100")).latency == LatencyProfile("fixed", 100.0, 100.0)
    profile = "lognormal:median=800,p99=4000,seed=2"
    assert options_from_args(parse("--latency-ms", "100", "--latency-profile", profile)).latency.seed == 2
    assert options_from_args(parse("--latency-profile", profile, "--latency-ms", "50")).latency.median_ms == 50


def test_the_command_line_refuses_a_bad_profile_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--latency-profile", "lognormal:median=800")
    assert "--latency-profile: latency profile 'lognormal:median=800': lognormal needs p99" in capsys.readouterr().err
