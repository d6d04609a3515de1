"""The one door to JAX: host devices for parallel chains, and float64.

XLA fixes the number of CPU devices when its backend starts, so ``configure`` sets one device per
usable core and starts the backend at once (other libraries, PyMC among them, rewrite ``XLA_FLAGS``
when imported). Importing ``mmm_models`` sets nothing: the library's two JAX users, the numpyro
sampler and the budget optimiser, call ``configure`` before they start JAX, so from the first numpyro
fit or budget optimisation on, the process's JAX runs on the CPU in float64 (the models' log densities
need float64). If the caller started JAX earlier, chains fall back to vectorised execution on the
devices that exist.
"""

from __future__ import annotations

import os

_DEVICE_FLAG = "--xla_force_host_platform_device_count"
_configured = False


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def configure() -> None:
    """Expose one XLA host device per usable core (unless set already) and enable float64; once per process.

    JAX runs on the CPU unless ``$JAX_PLATFORMS`` names another platform (``cuda``, say): the samplers'
    code is the same there, and numpyro's lanes are then vectorised (``FitSettings.lanes``).
    """
    global _configured
    if _configured:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if _DEVICE_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_DEVICE_FLAG}={usable_cores()}".strip()
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", os.environ.get("JAX_PLATFORMS") or "cpu")
    jax.local_device_count()  # start the backend now, with these flags
    _configured = True


def device_count() -> int:
    import jax

    return jax.local_device_count()
