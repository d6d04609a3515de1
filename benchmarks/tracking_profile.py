"""Where one market's seconds go after its fit: the summaries (gate, metric draws, review) and the
MLflow tracking (run, artifacts, registration) of ``pipelines.training.group._finish``.

Fits one simulated market (156 weeks, 5 channels, 4 x 1000 draws by default) once, caches it under the
work folder, then runs ``_finish`` ``--repeats`` times against a fresh SQLite MLflow store in the work
folder, as the training job's fit process would. From the second repeat on the market has a champion
(the first repeat's version), as in a weekly refit, so the review also loads it and compares ELPD.

    python benchmarks/tracking_profile.py [--repeats 4] [--workdir /tmp/mmm_tracking_profile] [--profile]

``--profile`` prints cProfile's top functions (cumulative time) of the last repeat. The last line is
one JSON object: ``summary_s`` and ``tracking_s`` per repeat, and their medians.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmm_models import persistence
from mmm_models.fitted import FittedModel, fit
from mmm_models.simulator import SimulationConfig, simulate_market, simulation_spec
from pipelines.config import GateSettings, TrainingSettings
from pipelines.names import model_name
from pipelines.registry.store import RegistryStore
from pipelines.training.contract import TrainJob

CHANNELS = ("tv", "search", "social", "video", "display")


def fitted_market(workdir: Path, training: TrainingSettings) -> FittedModel:
    """The simulated market's fit, from the cache when an earlier run left it there."""
    cache = workdir / f"fitted-{training.chains}x{training.draws}"
    if (cache / persistence.POSTERIOR_FILE).exists():
        return persistence.load(cache)
    config = SimulationConfig(weeks=156, channels=CHANNELS)
    market = simulate_market(config, seed=1)
    model = fit(simulation_spec(config), market.data, training.fit_settings(), market="sim/M00")
    persistence.save(model, cache)
    return persistence.load(cache)  # what later runs get, so every run measures the same thing


def job_for(workdir: Path, training: TrainingSettings) -> TrainJob:
    """A training job on a fresh SQLite store in ``workdir``, with its parent run."""
    store_dir = workdir / "mlflow"
    shutil.rmtree(store_dir, ignore_errors=True)
    store_dir.mkdir(parents=True)
    uri = f"sqlite:///{store_dir}/mlflow.db"
    store = RegistryStore(uri, uri, (store_dir / "artifacts").as_uri())
    experiment = store.experiment_id("tracking-profile")
    parent = store.create_run(experiment, "training", {})
    return TrainJob(
        training_run_id=parent,
        run_date="2025-06-02",
        experiment_id=experiment,
        tracking_uri=uri,
        registry_uri=uri,
        model_prefix="profile",
        compile_dir=str(workdir / "pytensor"),
        code_version="profile",
        brands={},
        training=training.model_dump(),
        gate=GateSettings().model_dump(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mmm_tracking_profile"))
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of the last repeat")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    from mmm_models.diagnostics import diagnose
    from pipelines.registry.promotion import CHAMPION
    from pipelines.training.group import _finish

    args.workdir.mkdir(parents=True, exist_ok=True)
    training = TrainingSettings(sampler="numpyro", draws=args.draws, compile_dir=str(args.workdir / "pytensor"))
    model = fitted_market(args.workdir, training)
    diagnostics = diagnose(model).to_dict()
    job = job_for(args.workdir, training)
    store = RegistryStore(job.tracking_uri, job.registry_uri)
    summary_s, tracking_s = [], []
    profiler = cProfile.Profile()
    for repeat in range(args.repeats):
        result: dict = {}
        last = repeat == args.repeats - 1
        if last and args.profile:
            profiler.enable()
        _finish(model, diagnostics, training, GateSettings(), job, "sim", "M00", result)
        if last and args.profile:
            profiler.disable()
        summary_s.append(round(result["summary_seconds"], 3))
        tracking_s.append(round(result["tracking_seconds"], 3))
        print(f"repeat {repeat}: summaries {summary_s[-1]:.2f} s, tracking {tracking_s[-1]:.2f} s", flush=True)
        if repeat == 0:  # later repeats are weekly refits: the market has a champion to compare with
            store.set_alias(model_name(job.model_prefix, "sim", "M00"), CHAMPION, result["model_version"])
    if args.profile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    print(
        json.dumps(
            {
                "draws": f"{training.chains}x{training.draws}",
                "summary_s": summary_s,
                "tracking_s": tracking_s,
                "summary_s_median": statistics.median(summary_s),
                "tracking_s_median": statistics.median(tracking_s),
                "versus_champion": json.loads(result["review"])["versus_champion"]["message"],
            }
        )
    )


if __name__ == "__main__":
    main()
