"""How the training job cuts markets into batches (one Spark task each)."""

from __future__ import annotations

import pytest

from pipelines.config import TrainingSettings
from pipelines.training.driver import market_batches


def groups(rows: list[tuple[str, str, int]]) -> dict[tuple[str, int], list[str]]:
    found: dict[tuple[str, int], list[str]] = {}
    for brand, market, batch in rows:
        found.setdefault((brand, batch), []).append(market)
    return found


WEEKS = {("acme", f"M{i}"): 156 for i in range(10)} | {("bolt", f"M{i}"): 104 + 26 * (i % 2) for i in range(4)}


def test_every_market_is_in_exactly_one_batch_of_its_own_brand() -> None:
    rows = market_batches(WEEKS, batch_size=4, overridden=set(), slots=2)
    assert sorted((b, m) for b, m, _ in rows) == sorted(WEEKS)
    for (brand, _), markets in groups(rows).items():
        assert all((brand, m) in WEEKS for m in markets)


def test_batches_are_near_equal_and_at_most_the_batch_size() -> None:
    sizes = sorted(len(ms) for (b, _), ms in groups(market_batches(WEEKS, 4, set(), 2)).items() if b == "acme")
    assert sizes == [3, 3, 4]  # 10 markets in ceil(10 / 4) = 3 batches, not 4 + 4 + 2


def test_similar_histories_share_a_batch() -> None:
    bolt = [ms for (b, _), ms in groups(market_batches(WEEKS, 2, set(), 2)).items() if b == "bolt"]
    assert sorted(map(sorted, bolt)) == [["M0", "M2"], ["M1", "M3"]]  # 104 weeks together, 130 together


def test_batches_split_until_every_slot_has_work() -> None:
    rows = market_batches({("acme", f"M{i}"): 156 for i in range(6)}, batch_size=8, overridden=set(), slots=4)
    assert sorted(len(ms) for ms in groups(rows).values()) == [1, 1, 2, 2]


def test_an_overridden_market_and_batch_size_one_fit_alone() -> None:
    rows = market_batches(WEEKS, 4, {"acme/M3"}, 2)
    assert ["M3"] in groups(rows).values()
    assert all(len(ms) == 1 for ms in groups(market_batches(WEEKS, 1, set(), 2)).values())


def test_batching_needs_the_numpyro_sampler() -> None:
    assert TrainingSettings(sampler="numpyro", batch_size=8).batch_size == 8
    with pytest.raises(ValueError, match="batch_size 8 needs sampler numpyro"):
        TrainingSettings(sampler="nutpie", batch_size=8)
