"""A CTR-GCN network behind ST-GCN's input adapter: a cross-architecture pair that shares one adapter.

The lite ST-GCN rotates every clip to a canonical view (pyskl's PreNormalize3D) while CTR-GCN only centres
and resamples it, so transfer between the zoo's ST-GCN and CTR-GCN mixes two differences: the network and
what the network sees. This factory removes the second: a lite CTR-GCN network fed through the lite ST-GCN's
adapter. Trained with ``skelrobust train --victim bench/shared_adapter.py:ctrgcn_behind_stgcn_adapter``
(see ``bench/bench_transfer.py``), it is the reference point "other architecture, same adapter" of the
transfer study; CTR-GCN's network pools over time, so it takes the clip's length as the adapter gives it.
``load_victim`` (and so ``train``, ``run`` and the bench) passes the data's layout, class and person counts, so the same
factory serves the embedded set (ntu25) and UTD-MHAD (utd20).
"""

from __future__ import annotations

from typing import Any

from skelrobust.victim import VICTIMS, Victim


def ctrgcn_behind_stgcn_adapter(
    num_classes: int = 16, layout: str = "ntu25", preset: str = "lite", num_persons: int = 2, **config: Any
) -> Victim:
    """The ``preset`` CTR-GCN network with the ``preset`` ST-GCN's adapter for ``layout`` (random weights)."""
    ctrgcn = VICTIMS.get("ctrgcn").build(preset=preset, num_classes=num_classes, layout=layout, num_persons=num_persons, **config)
    stgcn = VICTIMS.get("stgcn").build(preset=preset, num_classes=num_classes, layout=layout, num_persons=num_persons)
    return Victim(
        ctrgcn.network, layout=layout, num_classes=num_classes, adapter=stgcn.adapter, name="ctrgcn-stgcn-adapter",
        preset=preset, config={"network": ctrgcn.config, "adapter": stgcn.config}, num_persons=ctrgcn.num_persons,
    )
