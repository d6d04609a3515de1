"""Brand models (``training.unit: brand``) on Spark in two stages, so that one brand can use a cluster.

1. Sampling: a brand's rows go to ``training.chain_tasks(slots)`` tasks, one per block of its chains
   (``mmm_models.chains``); each task samples its block of the same brand model (same rows, same
   preparation, the block's own seed) and returns the draws as netCDF bytes. The driver merges a
   brand's blocks along ``chain``: the brand-level summary and diagnostics are computed on the merge.
2. Finishing: one task per market, given its rows and its slice of the merged posterior (its own
   parameters, the brand-level ones, the sampler statistics: about chains x draws x parameters x 8
   bytes, no weekly arrays), gates, reviews, summarises and tracks it as the market unit does.

One chain task is the same path with one block. A market left out of the brand model gets a failed row
with the reason; a brand whose sampling fails fails its markets with that reason; a brand with fewer than
two valid markets has each fitted on its own in stage 2. One brand never stops another.
"""

from __future__ import annotations

import json

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from mmm_models import chains
from pipelines.config import TrainingSettings
from pipelines.training.contract import RESULT_SCHEMA, SAMPLE_SCHEMA, SHIPPED_SCHEMA, TrainJob
from pipelines.training.tasks import one_task_per_group, partition_keys
from pipelines.training.worker import finish_market_function, sample_block_function

BLOCK_SCHEMA = "task int, brand string, chain_block int, first_chain int, chains int"
TASK_SCHEMA = "task int, brand string, market string"


def train_brands(
    spark: SparkSession, frame: DataFrame, job: TrainJob, slots: int
) -> tuple[list[Row], dict[str, dict[str, float]]]:
    """Every brand's model sampled in chain blocks, then each market finished in a task of its own.

    Returns the status rows (``RESULT_SCHEMA``, one per market) and, per brand, its sampling stage: the
    Spark tasks it ran in (``tasks``), the netCDF bytes of its blocks (``draws_bytes``) and the mean
    bytes shipped to a market's finishing task (``market_bytes``).
    """
    training = TrainingSettings.model_validate(job.training)
    blocks = chains.chain_blocks(training.chains, training.chain_tasks(slots))
    pairs = sorted((r.brand, r.market) for r in frame.select("brand", "market").distinct().collect())
    brands = sorted({brand for brand, _ in pairs})
    wanted = [(brand, index, block.first, block.count) for brand in brands for index, block in enumerate(blocks)]
    table = [(key, *row) for key, row in zip(partition_keys(spark, len(wanted)), wanted, strict=True)]
    blocked = frame.join(F.broadcast(spark.createDataFrame(table, BLOCK_SCHEMA)), ["brand"])
    with one_task_per_group(spark, len(table)):
        sampled = (
            blocked.groupBy("task")
            .applyInPandas(sample_block_function(job), SAMPLE_SCHEMA)
            .withColumn("partition", F.spark_partition_id())
            .collect()  # a block's draws, now on the driver: merged there, then shipped per market
        )
    by_brand: dict[str, list[Row]] = {}
    for row in sorted(sampled, key=lambda r: (r.brand, r.chain_block)):
        by_brand.setdefault(row.brand, []).append(row)
    sampling = {
        brand: {
            "tasks": len({r.partition for r in rows}),
            "draws_bytes": sum(len(r.posterior or b"") for r in rows),
        }
        for brand, rows in by_brand.items()
    }
    keys = partition_keys(spark, len(pairs))
    shipped = []
    for brand in brands:
        markets = [market for b, market in pairs if b == brand]
        found = shipped_rows(brand, markets, by_brand.get(brand, []), len(blocks))
        if brand in sampling:
            sampling[brand]["market_bytes"] = sum(len(row[2] or b"") for row in found) / len(found)
        shipped += found
    shipped = [(key, *row) for key, row in zip(keys, shipped, strict=True)]
    task_of = spark.createDataFrame([row[:3] for row in shipped], TASK_SCHEMA)
    rows = frame.join(F.broadcast(task_of), ["brand", "market"])
    sent = spark.createDataFrame(shipped, SHIPPED_SCHEMA)
    with one_task_per_group(spark, len(shipped)):
        finished = (
            rows.groupBy("task")
            .cogroup(sent.groupBy("task"))
            .applyInPandas(finish_market_function(job), RESULT_SCHEMA)
            .collect()  # one small row per market, now on the driver: no executor holds the only copy
        )
    return finished, sampling


def shipped_rows(brand: str, markets: list[str], blocks: list[Row], expected: int) -> list[tuple]:
    """(brand, market, posterior, context) for each of the brand's markets, from its stage-1 ``blocks``."""
    errors = [f"{r.error} (chains {r.first_chain}-{r.first_chain + r.chains - 1})" for r in blocks if r.error]
    if len(blocks) < expected and not errors:
        errors = [f"{expected - len(blocks)} of {expected} chain blocks returned nothing"]
    if errors:
        return [(brand, m, None, json.dumps({"mode": "failed", "error": errors[0]})) for m in markets]
    if not all(r.pooled for r in blocks):  # fewer than two valid markets: each is its own model
        return [(brand, m, None, json.dumps({"mode": "independent"})) for m in markets]
    merged = chains.merge_chain_blocks([chains.from_bytes(r.posterior) for r in blocks])
    summary = chains.brand_level_summary(merged)
    by_market = json.loads(blocks[0].markets)
    pooled = [m for m in markets if "scaling" in by_market.get(m, {})]
    wall = max(r.wall_seconds for r in blocks)
    brand_context = {
        "mode": "pooled",
        "pooled_markets": pooled,
        "brand_summary": summary.to_json(orient="split"),
        "brand_diagnostics": chains.brand_level_diagnostics(summary),
        "timings": {
            "sampler_s": max(r.sampler_seconds for r in blocks),
            "wall_s": wall,
            "compiled": float(any(r.compiled for r in blocks)),
            "markets": len(pooled),
        },
        "worker": ",".join(sorted({r.worker for r in blocks})),
        "sampling_seconds": wall / len(markets),
    }
    found = []
    for index, market in enumerate(markets):
        compilations = sum(r.compilations for r in blocks) if index == 0 else 0  # the brand's, counted once
        context = {**brand_context, "compilations": compilations}
        entry = by_market.get(market, {"error": "no rows of this market reached the brand model's sampling"})
        if "scaling" in entry:
            posterior = chains.to_bytes(chains.market_slice(merged, market))
            found.append((brand, market, posterior, json.dumps({**context, "scaling": entry["scaling"]})))
        else:
            found.append((brand, market, None, json.dumps({**context, "mode": "failed", "error": entry["error"]})))
    return found
