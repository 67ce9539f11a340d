"""Where the adversarial sets of a grid run: in this process, or as Ray tasks on a cluster.

An executor receives the grid's jobs (one per adversarial set still to make) and, as each finishes,
hands back a :class:`Outcome`: the set's run folder filled by the one-cell runner
(:func:`skelrobust.benchmark.cell.run_cell`), or the error that stopped it. The grid turns outcomes into
cells; executors know nothing of the table.

- :class:`LocalExecutor` (``--executor local``, the default) runs the sets one after another in this
  process, with the runner's per-set progress bar beneath the grid's; an interrupted set resumes from
  its finished batches.
- :class:`RayExecutor` (``--executor ray``, the optional extra ``skelrobust[ray]``) submits one Ray task
  per set with declared resources (``num_cpus``, ``num_gpus``), to the cluster at ``address`` or to a
  local one it starts. Each task runs the runner in a scratch folder on its worker and returns the
  folder's files, which the driver writes into the grid folder, so workers need no shared filesystem:
  they need skelrobust installed and the datasets reachable (the embedded set always is). The unit of
  resume on Ray is the set (a set interrupted mid-way is redone from its start).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError, MissingDependencyError
from ..io import atomic_path

logger = logging.getLogger(__name__)

#: Files of a runner folder that travel back from a Ray worker (the shards stay there).
RUN_FILES = ("results.json", "samples.jsonl", "adversarial.npz", "attack_set.json", "state.json")


@dataclass(frozen=True)
class Job:
    """One adversarial set to make: the runner's configuration and the folder it belongs in."""

    key: tuple[str, str, str, float]
    config: Any  # skelrobust.benchmark.cell_config.RunConfig
    folder: Path
    label: str


@dataclass(frozen=True)
class Outcome:
    """How a job ended: ``error`` is None on success; ``seconds`` is the runner's wall time."""

    job: Job
    seconds: float
    error: dict[str, str] | None = None


def _error(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": " ".join(str(exc).split())}


class LocalExecutor:
    """Runs the sets one after another in this process."""

    name = "local"

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def run(self, jobs: Sequence[Job], done: Callable[[Outcome], None]) -> None:
        from ..benchmark.cell import run_cell

        for job in jobs:
            start = time.perf_counter()
            try:
                run_cell(job.config, job.folder, progress=self.progress)
            except Exception as exc:  # one broken set must not lose the others (KeyboardInterrupt still stops)
                logger.warning("adversarial set %s failed; its cells are recorded as errors", job.label, exc_info=True)
                done(Outcome(job, time.perf_counter() - start, _error(exc)))
                continue
            done(Outcome(job, time.perf_counter() - start))


def _run_remote(config: Any, threads: int) -> dict[str, Any]:
    """The body of a Ray task: run one set in a scratch folder and return its files' bytes (or the error)."""
    import torch

    from ..benchmark.cell import run_cell

    torch.set_num_threads(max(1, threads))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skelrobust-set-") as scratch:
        try:
            run_cell(config, scratch, progress=False)
        except Exception as exc:  # returned, not raised: the driver records it per cell
            return {"error": _error(exc), "seconds": time.perf_counter() - start}
        files = {name: (Path(scratch) / name).read_bytes() for name in RUN_FILES if (Path(scratch) / name).exists()}
    return {"files": files, "seconds": time.perf_counter() - start}


class RayExecutor:
    """One Ray task per adversarial set, with declared CPU / GPU resources.

    Args:
        address: A running cluster (``ray://host:10001`` or ``auto``); None starts a local cluster.
        num_cpus: CPUs of the local cluster started when ``address`` is None (default: all of this machine).
        task_cpus: CPUs each task declares (and the torch threads it uses).
        task_gpus: GPUs each task declares (give 1 with ``device: cuda``).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, task_cpus: int = 1, task_gpus: float = 0) -> None:
        if task_cpus < 1:
            raise ConfigError(f"--task-cpus must be >= 1, got {task_cpus}")
        if task_gpus < 0:
            raise ConfigError(f"--task-gpus must be >= 0, got {task_gpus}")
        if num_cpus is not None and address is not None:
            raise ConfigError("--ray-cpus sizes a local cluster; it cannot be combined with --ray-address")
        self.address, self.num_cpus, self.task_cpus, self.task_gpus = address, num_cpus, task_cpus, task_gpus

    def run(self, jobs: Sequence[Job], done: Callable[[Outcome], None]) -> None:
        try:
            import ray
        except ImportError as exc:
            raise MissingDependencyError("--executor ray needs Ray: pip install 'skelrobust[ray]'") from exc
        if not jobs:
            return
        started_here = not ray.is_initialized()
        if started_here:
            # A local cluster's workers get this process's cache folder and thread caps; a remote cluster's
            # workers keep their own (this machine's paths mean nothing there).
            env = {k: v for k, v in os.environ.items() if k.startswith(("SKELROBUST_", "OMP_", "MKL_"))} if self.address is None else {}
            ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env} if env else None, logging_level=logging.WARNING)
        try:
            task = ray.remote(_run_remote).options(num_cpus=self.task_cpus, num_gpus=self.task_gpus, max_retries=0)
            pending = {task.remote(job.config, self.task_cpus): job for job in jobs}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ready[0])
                try:
                    reply = ray.get(ready[0])
                except Exception as exc:  # the task itself died (worker lost, unpicklable result...)
                    done(Outcome(job, 0.0, _error(exc)))
                    continue
                if "error" in reply:
                    done(Outcome(job, float(reply["seconds"]), reply["error"]))
                    continue
                job.folder.mkdir(parents=True, exist_ok=True)
                for name, data in reply["files"].items():
                    if name == "results.json":
                        continue
                    with atomic_path(job.folder / name) as tmp:
                        tmp.write_bytes(data)
                with atomic_path(job.folder / "results.json") as tmp:  # last: its presence means complete
                    tmp.write_bytes(reply["files"]["results.json"])
                done(Outcome(job, float(reply["seconds"])))
        finally:
            if started_here:
                ray.shutdown()


def make_executor(name: str, *, progress: bool = True, address: str | None = None, num_cpus: int | None = None,
                  task_cpus: int = 1, task_gpus: float = 0) -> LocalExecutor | RayExecutor:
    """The executor called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        if address is not None or num_cpus is not None:
            raise ConfigError("--ray-address / --ray-cpus need --executor ray")
        return LocalExecutor(progress=progress)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=num_cpus, task_cpus=task_cpus, task_gpus=task_gpus)
    raise ConfigError(f"--executor must be local or ray, got {name!r}")
