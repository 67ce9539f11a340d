"""The Ray executor on a local two-CPU cluster gives the same table as the local executor.

Ray is the optional extra ``skelrobust[ray]``, which .ci/run installs: without it the test is skipped on a
developer's machine and fails in CI (CI=true).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest

from skelrobust.benchmark import load_results, parse_protocol, run_grid
from skelrobust.benchmark.executors import RayExecutor, make_executor
from skelrobust.errors import ConfigError

from grid_helpers import RUN_VARYING

HAVE_RAY = importlib.util.find_spec("ray") is not None


def test_executor_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="--ray-address / --ray-cpus need --executor ray"):
        make_executor("local", address="auto")
    with pytest.raises(ConfigError, match="--task-cpus must be >= 1"):
        RayExecutor(task_cpus=0)
    with pytest.raises(ConfigError, match="cannot be combined with --ray-address"):
        RayExecutor(address="auto", num_cpus=2)


#: Two adversarial sets (one task each on the two CPUs), small enough for CI.
TINY = {
    "protocol": "tiny-grid-v1",
    "defaults": {"steps": 3, "seed": 0, "n_samples": 8, "batch_size": 8},
    "datasets": {"synthetic": {"attacks": ["pgd", "mifgsm"], "surrogates": ["stgcn"], "victims": ["stgcn"], "defenses": ["none", "lowpass"]}},
}


def test_ray_and_local_tables_are_identical(tmp_path: Path) -> None:
    if not HAVE_RAY:
        if os.environ.get("CI") == "true":
            pytest.fail("ray is not installed; .ci/run installs the ray extra")
        pytest.skip("ray is not installed (pip install 'skelrobust[ray]'); CI runs this check")
    protocol = parse_protocol(TINY)
    local = run_grid(protocol, tmp_path / "local", progress=False)
    remote = run_grid(protocol, tmp_path / "ray", executor=RayExecutor(num_cpus=2), progress=False)
    assert local.failed == remote.failed == [] and remote.cells_run == 4
    steady = [c for c in local.table.columns if c not in RUN_VARYING]
    pd.testing.assert_frame_equal(load_results(tmp_path / "ray")[steady], load_results(tmp_path / "local")[steady])
