"""Champions: each market's registered model behind the serving alias, loaded once per version.

The alias is looked up through the registry (``RegistryStore``, the one MLflow door) at most once per
``alias_ttl_s`` per market, so a promotion is served within that time; a loaded model is kept by
(model name, version) and dropped when its market's alias has moved on. A market without a version
behind the alias raises ``NoChampionError`` with the reason, including its latest training status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mmm_models.fitted import FittedModel
from mmm_models.optimizer import OptimizationError, ResponseModel
from pipelines.names import model_name
from pipelines.registry.store import RegistryStore

log = logging.getLogger(__name__)


class NoChampionError(LookupError):
    """A market without a version behind the serving alias; the message says why."""


@dataclass(frozen=True)
class Champion:
    """One market's served model version, with what the optimiser needs of it prepared once."""

    brand: str
    market: str
    model_name: str
    version: str
    model: FittedModel
    response: ResponseModel | None  # the optimiser's view of the posterior (``max_draws`` draws), if it has one
    response_error: str | None = None  # why it has none (a log link)

    def optimizer_response(self) -> ResponseModel:
        """The response model to optimise, or ``OptimizationError`` saying why this model cannot be optimised."""
        if self.response is None:
            raise OptimizationError(self.response_error or "this model cannot be optimised")
        return self.response

    @property
    def structure(self) -> str:
        """The model's structure key: champions with equal keys share one compiled optimiser."""
        return self.model.spec.structure_key()


class ChampionCache:
    """Champions by market, refreshed when their alias moves (thread-safe; one load per version)."""

    def __init__(
        self,
        store: RegistryStore,
        alias: str,
        prefix: str,
        max_draws: int,
        alias_ttl_s: float = 10.0,
        training_status: Callable[[str, str], str | None] = lambda _brand, _market: None,
    ) -> None:
        self.store, self.alias, self.prefix, self.max_draws = store, alias, prefix, max_draws
        self.alias_ttl_s, self.training_status = alias_ttl_s, training_status
        self._aliases: dict[tuple[str, str], tuple[str | None, float]] = {}
        self._loaded: dict[tuple[str, str], Champion] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def model_name(self, brand: str, market: str) -> str:
        return model_name(self.prefix, brand, market)

    def version(self, brand: str, market: str) -> str | None:
        """The version behind the alias now (looked up again after ``alias_ttl_s``)."""
        key = (brand, market)
        with self._guard:
            cached = self._aliases.get(key)
        if cached is not None and time.monotonic() - cached[1] < self.alias_ttl_s:
            return cached[0]
        version = self.store.alias_version(self.model_name(brand, market), self.alias)
        with self._guard:
            self._aliases[key] = (version, time.monotonic())
        return version

    def get(self, brand: str, market: str) -> Champion:
        """The market's champion, loaded from its run's saved model the first time its version is asked for."""
        key = (brand, market)
        name = self.model_name(brand, market)
        version = self.version(brand, market)
        if version is None:
            why = f"{brand}/{market} has no {self.alias} version of {name}"
            status = self.training_status(brand, market)
            raise NoChampionError(why + (f"; latest training: {status}" if status else "; it has not been trained"))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            loaded = self._loaded.get(key)
            if loaded is not None and loaded.version == version:
                return loaded
            started = time.perf_counter()
            model = self.store.load_run_model(self.store.market_run_id(name, version, brand, market))
            try:
                response, error = ResponseModel.from_fitted(model, self.max_draws), None
            except OptimizationError as exc:  # still served: summaries and what-ifs need no response model
                response, error = None, str(exc)
            champion = Champion(brand, market, name, version, model, response, error)
            self._loaded[key] = champion  # replaces the version the alias has left
            log.info("loaded %s v%s in %.1f s", name, version, time.perf_counter() - started)
            return champion

    def loaded(self) -> list[Champion]:
        """The champions in memory now."""
        with self._guard:
            return sorted(self._loaded.values(), key=lambda c: (c.brand, c.market))
