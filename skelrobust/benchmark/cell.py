"""One benchmark cell, as ``skelrobust run`` runs it: one attack, its attack set, every victim x defense.

What a run does:

1. Resolves the configuration (command-line values over ``benchmark.yaml``'s defaults).
2. Gives the attack exactly the access of its threat model:

   - white-box: the ``surrogate`` if given, else the first victim, with gradients, and the labels;
   - transfer: the ``surrogate``, or the protocol's default surrogate for the dataset (a different
     architecture from the victims), with its training split passed to :meth:`Attack.prepare`;
   - hard no-box: only the clean samples (no model, no labels);
   - query: a counting oracle of the first victim (its softmax scores) and the labels;
   - own surrogate: the training split with its labels and the labels, no model (``--surrogate`` refused);
     the attack builds its surrogate in :meth:`Attack.prepare`, the first victim selects the attack set.

3. Chooses the attack set deterministically from the seed (:mod:`skelrobust.attack_set`) with the
   attacked model (or, for no-box attacks, the surrogate / first victim).
4. Generates the adversarial examples once, in batches; batch ``b`` uses a ``torch.Generator`` seeded
   from ``(seed, b)``, so a rerun reproduces the set bit for bit on the same machine whatever was
   already done. Each finished batch is an atomic shard file under ``DIR/shards/``, keyed by a hash of
   the generation settings: an interrupted run resumes where it stopped, and a different generation
   configuration in the same folder is refused unless ``overwrite``.
5. Evaluates the adversarial set on every victim x defense with ``torch.inference_mode`` (victims and
   defenses may change between reruns: only evaluation is redone), measures imperceptibility, and
   writes ``results.json``, ``samples.jsonl`` and ``adversarial.npz`` atomically.

Failure isolation (as timm's ``validate.py`` does per model): an ``Exception`` raised while evaluating
one victim x defense cell is logged with its traceback at WARNING and recorded in that cell (see
:mod:`skelrobust.results`); the other cells are still evaluated and every output is written. Nothing
about a failed cell is cached, so a rerun in the same folder evaluates it again. Selection and
generation are not isolated: an attack failure stops the run (finished shards are kept for resume).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import config as protocol
from ..attack import Attack, ThreatModel
from ..attack_set import AttackSet, predict, select_attack_set
from ..data import DATASETS, SkeletonDataset, load_dataset
from ..defense import Defense, create_defense
from ..errors import ConfigError
from ..io import atomic_path, atomic_write_json, atomic_write_text
from ..metrics import imperceptibility, metric_units, summarize
from ..nobox.access import hard_no_box_config, unlabelled_samples
from ..provenance import RESULTS_SCHEMA_VERSION, provenance
from ..query import QueryOracle, query_access, query_summary
from ..results import cell_summary, error_summary, jsonable, sample_records
from ..version import __version__
from ..victim import Victim
from .cell_config import Roles, RunConfig, build_attack, default_selection, load_model, per_attack_max_queries, resolve_config, resolve_roles
from .run_folder import ADVERSARIAL_FILE, ATTACK_SET_FILE, RESULTS_FILE, RunDirectory, SAMPLES_FILE, sample_indices_record

logger = logging.getLogger(__name__)


def batch_seed(seed: int, batch: int) -> int:
    """The generator seed of batch ``batch``: a SeedSequence hash of ``(seed, batch)`` (independent streams)."""
    return int(np.random.SeedSequence([seed, batch]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _fingerprint(dataset: SkeletonDataset) -> str:
    """A cheap identity of a test split, so changed data are not resumed.

    Hashes the shape, sample ids, labels, lengths and the coordinates of up to 64 evenly spaced samples
    (regenerated or re-prepared data change those; hashing a whole multi-GB split would not be cheap).
    """
    import hashlib

    digest = hashlib.sha256(json.dumps([list(dataset.data.shape), dataset.sample_ids]).encode())
    digest.update(np.ascontiguousarray(dataset.labels).tobytes())
    digest.update(np.ascontiguousarray(dataset.lengths).tobytes())
    probe = np.unique(np.linspace(0, len(dataset) - 1, num=min(64, len(dataset))).astype(np.int64))
    digest.update(np.ascontiguousarray(dataset.data[probe]).tobytes())
    return digest.hexdigest()


def _weights_hash(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict (names and values), so changed weights are never resumed."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _config_hash(obj: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(jsonable(obj), sort_keys=True, default=str).encode()).hexdigest()


def _attack_batch(
    attack: Attack,
    x: torch.Tensor,
    labels: torch.Tensor,
    targets: torch.Tensor | None,
    *,
    roles: Roles,
    models: dict[str, Victim],
    layout: Any,
    generator: torch.Generator,
    sample_ids: list[str],
    max_queries: int | None = None,
) -> dict[str, Any]:
    """Run the attack on one batch with exactly its threat model's access; numpy results.

    A query attack gets a fresh :class:`~skelrobust.query.QueryOracle` of the oracle victim; its queries and
    first successful query per sample are read from that oracle, not from the attack's output.
    """
    threat = attack.threat
    kwargs: dict[str, Any] = {"layout": layout, "generator": generator, "sample_ids": sample_ids, "target": targets}
    if roles.attacked is not None:  # white-box and transfer
        kwargs["model"] = models[roles.attacked]
    oracle = None
    if roles.oracle is not None:  # query
        if max_queries is None:
            raise ConfigError(f"attack {attack.name!r} is a query attack: give --max-queries")
        oracle = QueryOracle(models[roles.oracle], max_queries=max_queries, feedback=str(getattr(attack, "feedback", "scores")), name=roles.oracle)
        kwargs["oracle"] = oracle
    start = time.perf_counter()
    out = attack(x, None if threat is ThreatModel.HARD_NO_BOX else labels, **kwargs)
    seconds = time.perf_counter() - start
    queried = {} if oracle is None else {"queries": oracle.counts.numpy().astype(np.int64), "first_success_query": oracle.first_success.numpy().astype(np.int64)}
    return {
        "adversarial": out.adversarial.detach().cpu().numpy().astype(np.float32),
        "iterations": out.iterations.cpu().numpy().astype(np.int64),
        "gradient_evaluations": out.gradient_evaluations.cpu().numpy().astype(np.int64),
        "queries": out.queries.cpu().numpy().astype(np.int64),
        "final_loss": out.final_loss.cpu().numpy().astype(np.float64),
        "seconds": np.array(seconds),
        "extras": np.array(json.dumps(jsonable(out.extras), default=str)),
        **queried,
    }


def run_cell(
    cfg: RunConfig, output: str | Path, *, overwrite: bool = False, progress: bool = True, keep_shards: bool = False
) -> dict[str, Any]:
    """Run (or resume) one attack against every victim x defense and write the outputs to ``output``.

    ``keep_shards`` keeps ``shards/`` after ``adversarial.npz`` is written (by default they are removed:
    they hold the same clips).

    Returns:
        The content of ``results.json``; cells whose evaluation raised carry an ``error`` (see
        :func:`skelrobust.results.failed_cells`).

    Raises:
        ConfigError, RegistryError, LayoutMismatchError, CheckpointError, DataError, UnsupportedError:
            user errors, each with a one-line message.
    """
    wall = time.perf_counter()
    cfg = resolve_config(cfg)
    device = torch.device(cfg.device)
    dataset = load_dataset(cfg.dataset, cfg.split, root=cfg.root, **cfg.dataset_options)
    attack = build_attack(cfg, unit=dataset.units)
    cfg = replace(cfg, max_queries=query_access(attack.threat is ThreatModel.QUERY, cfg.attack, cfg.surrogate, cfg.max_queries, per_attack_max_queries(cfg)))
    cfg = hard_no_box_config(cfg, attack)
    defenses: dict[str, Defense] = {name: create_defense(name, **cfg.defense_options.get(name, {})) for name in cfg.defenses}
    cfg = default_selection(cfg)
    roles = resolve_roles(attack.threat, cfg)
    names = list(dict.fromkeys([*cfg.victims, *(n for n in (roles.attacked, roles.oracle, roles.selection) if n)]))
    unused = sorted(set(cfg.checkpoints) - set(names))
    if unused:
        # Checked once the roles are known: a transfer attack's default surrogate comes from benchmark.yaml.
        raise ConfigError(f"checkpoint given for {', '.join(map(repr, unused))}, which is neither a victim nor the attacked model")
    for name, path in cfg.checkpoints.items():
        if not Path(path).is_file():
            raise ConfigError(f"checkpoint for {name!r} not found: {path}")
    models = {name: load_model(name, cfg, dataset) for name in names}
    metadata = {name: models[name].metadata for name in names}

    generation = {
        "attack": cfg.attack,
        "attack_config": attack.config(),
        "threat_model": attack.threat.value,
        "attacked_model": roles.attacked,
        "oracle": roles.oracle,
        "selection_model": roles.selection,
        "model_weights": {n: _weights_hash(models[n]) for n in {roles.attacked, roles.oracle, roles.selection} if n},
        "dataset": cfg.dataset,
        "root": cfg.root,
        "dataset_options": cfg.dataset_options,
        "dataset_fingerprint": _fingerprint(dataset),
        **({"split": cfg.split} if cfg.split != "test" else {}),
        "skelrobust_version": __version__,
        "n_samples": cfg.n_samples,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "targeted": cfg.targeted,
        "selection": cfg.selection,
        "order": cfg.order,
        "device": device.type,
        "max_queries": cfg.max_queries,
    }
    key = _config_hash(generation)
    run_dir = RunDirectory(output)
    run_dir.begin(key, generation, overwrite)

    t0 = time.perf_counter()
    attack_set = run_dir.load_attack_set(dataset)
    if attack_set is None:
        attack_set = select_attack_set(
            dataset, models[roles.selection], n_samples=cfg.n_samples, seed=cfg.seed, batch_size=cfg.batch_size,
            device=device, selection=cfg.selection, order=str(cfg.order), model_name=roles.selection, targeted=bool(cfg.targeted),
        )
        run_dir.save_attack_set(attack_set)
    selection_seconds = time.perf_counter() - t0
    if len(attack_set) < cfg.n_samples:
        logger.warning("only %d test samples qualify for the attack set (%d requested)", len(attack_set), cfg.n_samples)

    clean = np.ascontiguousarray(dataset.data[np.sort(attack_set.indices)])[np.argsort(np.argsort(attack_set.indices))]
    shards = _generate(attack, cfg, roles, models, dataset, attack_set, clean, run_dir, key, progress)
    adversarial = np.concatenate([s["adversarial"] for s in shards])

    t0 = time.perf_counter()
    results, records = _evaluate(cfg, attack, roles, models, defenses, dataset, attack_set, clean, adversarial, shards)
    if cfg.max_queries is not None:  # query attacks: the oracle's own counts, never the attack's report
        first = np.concatenate([s["first_success_query"] for s in shards])
        results["query"] = query_summary(np.concatenate([s["queries"] for s in shards]), first, cfg.max_queries, str(getattr(attack, "feedback", "scores")))
        for record, value in zip(records, first.tolist()):
            record["first_success_query"] = int(value)
    evaluation_seconds = time.perf_counter() - t0

    results["timing"] = {
        "seconds": float(sum(float(s["seconds"]) for s in shards)),
        "seconds_per_sample": float(sum(float(s["seconds"]) for s in shards)) / max(len(attack_set), 1),
        "surrogate_gradient_evaluations": int(sum(int(s["gradient_evaluations"].sum()) for s in shards)),
        "queries": int(sum(int(s["queries"].sum()) for s in shards)),
        "selection_seconds": selection_seconds,
        "evaluation_seconds": evaluation_seconds,
        "wall_seconds_this_invocation": time.perf_counter() - wall,
        "note": "seconds: attack time summed over batches (kept across resumes); gradient evaluations: "
        "forward+backward passes of the attacked model per sample, summed",
    }
    results["provenance"] = provenance(
        config=jsonable(asdict(cfg)),
        models=metadata,
        seeds={"seed": cfg.seed, "attack_set": f"numpy.random.default_rng({cfg.seed}).permutation",
               "batch_generators": "torch.Generator seeded with SeedSequence([seed, batch]) per batch",
               "targets": f"numpy.random.default_rng([{cfg.seed}, 1])" if cfg.targeted else None},
    )
    results["provenance"]["sample_indices"] = sample_indices_record(attack_set)
    _write_outputs(run_dir.path, results, records, attack_set, dataset, clean, adversarial, cfg)
    run_dir.finish(key, generation, shards, keep_shards=keep_shards)
    return results


def _generate(
    attack: Attack,
    cfg: RunConfig,
    roles: Roles,
    models: dict[str, Victim],
    dataset: SkeletonDataset,
    attack_set: AttackSet,
    clean: np.ndarray,
    run_dir: RunDirectory,
    key: str,
    progress: bool,
) -> list[dict[str, Any]]:
    """Attack every batch not already in a shard; return all shards in order."""
    device = torch.device(cfg.device)
    bs = int(cfg.batch_size or 1)
    bounds = [(s, min(s + bs, len(attack_set))) for s in range(0, len(attack_set), bs)]
    shards: list[dict[str, Any] | None] = [run_dir.load_shard(b, key, stop - start) for b, (start, stop) in enumerate(bounds)]
    done = sum(stop - start for (start, stop), s in zip(bounds, shards) if s is not None)
    label = roles.attacked or roles.oracle or "no model"
    prepared = False
    with tqdm(total=len(attack_set), initial=done, desc=f"{cfg.attack} on {label}", unit="sample",
              file=sys.stderr, disable=not progress, leave=False) as bar:
        for b, (start, stop) in enumerate(bounds):
            if shards[b] is not None:
                continue
            if not prepared:
                _prepare(attack, cfg, roles, models, dataset, device, clean, attack_set.sample_ids, progress=progress)
                prepared = True
            x = torch.from_numpy(clean[start:stop]).to(device)
            labels = torch.from_numpy(attack_set.labels[start:stop]).to(device)
            targets = torch.from_numpy(attack_set.targets[start:stop]).to(device) if attack_set.targets is not None else None
            generator = torch.Generator(device=device).manual_seed(batch_seed(int(cfg.seed or 0), b))
            shard = _attack_batch(
                attack, x, labels, targets, roles=roles, models=models, layout=dataset.layout,
                generator=generator, sample_ids=attack_set.sample_ids[start:stop], max_queries=cfg.max_queries,
            )
            run_dir.save_shard(b, key, shard)
            shards[b] = shard
            bar.update(stop - start)
    return [s for s in shards if s is not None]


def _prepare(
    attack: Attack, cfg: RunConfig, roles: Roles, models: dict[str, Victim], dataset: SkeletonDataset, device: torch.device,
    clean: np.ndarray, sample_ids: list[str], progress: bool = True,
) -> None:
    """Call the attack's one-time hook with the access its threat model grants (seeded, for reproducibility).

    A hard no-box attack gets the unlabelled samples of its ``manifold_split`` (:func:`unlabelled_samples`).
    Without ``progress`` (``--quiet``) an attack's own bars (its ``progress`` option: encoder or head learning)
    are off during the hook; the option is restored after, so the recorded configuration is unchanged.
    """
    train: Any = None
    if attack.threat is ThreatModel.HARD_NO_BOX:
        train = unlabelled_samples(attack, cfg, dataset, clean, sample_ids)
    elif attack.needs_training_data:
        spec = DATASETS.get(cfg.dataset)
        if "train" not in spec.splits:
            raise ConfigError(f"attack {cfg.attack!r} needs a training split, dataset {cfg.dataset!r} has only {', '.join(spec.splits)}")
        train = load_dataset(cfg.dataset, "train", root=cfg.root, **cfg.dataset_options)
    model = models[roles.attacked] if roles.attacked is not None else None
    torch.manual_seed(int(cfg.seed or 0))
    own_bars = getattr(attack, "progress", None)
    if isinstance(own_bars, bool) and not progress:
        attack.progress = False  # type: ignore[attr-defined]
    try:
        attack.prepare(model=model, train_data=train, layout=dataset.layout, device=device)
    finally:
        if isinstance(own_bars, bool):
            attack.progress = own_bars  # type: ignore[attr-defined]


def _evaluate(
    cfg: RunConfig,
    attack: Attack,
    roles: Roles,
    models: dict[str, Victim],
    defenses: dict[str, Defense],
    dataset: SkeletonDataset,
    attack_set: AttackSet,
    clean: np.ndarray,
    adversarial: np.ndarray,
    shards: list[dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Predictions of every victim x defense, imperceptibility, the summary and the per-sample records."""
    device = torch.device(cfg.device)
    bs = int(cfg.batch_size or 1)
    everything = np.arange(len(attack_set))
    labels, targets = attack_set.labels, attack_set.targets

    def predictions(model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        torch.manual_seed(int(cfg.seed or 0))  # randomised defenses evaluate reproducibly
        return predict(model, clean, everything, bs, device), predict(model, adversarial, everything, bs, device)

    judge = roles.attacked or roles.oracle or roles.selection
    judged = predictions(models[judge])
    cells = []
    for name in cfg.victims:
        for defense_name, defense in defenses.items():
            try:
                defended = defense.wrap(models[name])
                clean_pred, adv_pred = judged if defended is models[judge] else predictions(defended)
            except Exception as exc:  # one broken cell must not lose the others (KeyboardInterrupt still stops)
                logger.warning("evaluating victim %r under defense %r failed; recorded as an error", name, defense_name, exc_info=True)
                error = {"type": type(exc).__name__, "message": str(exc)}
                cells.append({"victim": name, "defense": defense_name, "error": error})
                continue
            cells.append({"victim": name, "defense": defense_name, "clean_predictions": clean_pred, "adversarial_predictions": adv_pred})

    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(attack_set), 256):
        chunk = imperceptibility(torch.from_numpy(clean[start : start + 256]), torch.from_numpy(adversarial[start : start + 256]), dataset.layout)
        for k, v in chunk.items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
    per_sample = {k: np.concatenate(v) for k, v in parts.items()}
    summary = summarize(per_sample)

    stacked = {k: np.concatenate([s[k] for s in shards]) for k in ("iterations", "gradient_evaluations", "queries", "final_loss")}
    records = sample_records(
        indices=attack_set.indices, sample_ids=attack_set.sample_ids, labels=labels, targets=targets,
        attacked_model=judge, attacked_predictions=judged, cells=cells, imperceptibility=per_sample, **stacked,
    )
    white_box = cell_summary(judge, "none", judged[0], judged[1], labels, targets, dataset.class_names)
    unit = dataset.units
    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "protocol": protocol.load_benchmark().get("protocol"),
        "attack": cfg.attack,
        "threat_model": attack.threat.value,
        "attack_config": attack.config(),
        "surrogate": roles.attacked,
        "attacked_model": judge,
        "dataset": cfg.dataset,
        "split": cfg.split,
        "layout": dataset.layout.name,
        "num_classes": dataset.num_classes,
        "eps": float(cfg.eps or 0.0),
        "eps_unit": unit,
        "eps_source": cfg.eps_source,
        "norm": cfg.norm,
        "steps": cfg.steps,
        "targeted": cfg.targeted,
        "compat": cfg.compat,
        "n_samples": len(attack_set),
        "n_samples_requested": attack_set.n_requested,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "attack_set": {
            "selection": attack_set.selection,
            "order": attack_set.order,
            "selection_model": attack_set.selection_model,
            "pool_size": attack_set.pool_size,
            "pool_correct": attack_set.pool_correct,
            "file": ATTACK_SET_FILE,
        },
        "surrogate_clean_accuracy": attack_set.pool_accuracy,
        "surrogate_clean_accuracy_scope": (
            f"evaluated pool: accuracy of {attack_set.selection_model!r} on the first {attack_set.pool_size} test samples "
            f"in {'seeded-permutation' if attack_set.order == 'seeded' else 'file'} order (evaluated until {len(attack_set)} correct ones were found), not the whole test split"
        ),
        "white_box_success_rate": white_box["transfer_success_rate"],
        "white_box_model": judge,
        "white_box_success_by_class": white_box["success_by_class"],
        "victims": [
            error_summary(c["victim"], c["defense"], c["error"]) if "error" in c
            else cell_summary(
                c["victim"], c["defense"], c["clean_predictions"], c["adversarial_predictions"], labels, targets, dataset.class_names
            )
            for c in cells
        ],
        "defenses": {name: d.config() for name, d in defenses.items()},
        "imperceptibility": {k: v for k, v in summary.items() if not k.endswith("_median")},
        "imperceptibility_median": {k[: -len("_median")]: v for k, v in summary.items() if k.endswith("_median")},
        "imperceptibility_units": {k: v for k, v in metric_units(unit).items() if k in per_sample},
        "imperceptibility_scope": "mean (and median) over all attacked samples, per person and valid frames only",
        "success_definition": "targeted: adversarial prediction == target" if cfg.targeted else "untargeted: adversarial prediction != label",
        "attack_extras": [json.loads(str(s["extras"])) for s in shards],
        "files": {"samples": SAMPLES_FILE, "adversarial": ADVERSARIAL_FILE, "attack_set": ATTACK_SET_FILE},
    }
    if attack.threat is ThreatModel.WHITE_BOX and judge is not None:  # defended copies of the attacked model: adaptive
        from ..adaptive import add_adaptive_results

        add_adaptive_results(results["victims"], cells, attack, defenses, models, judge, clean, attack_set,
                             layout=dataset.layout, batch_size=bs, seed=int(cfg.seed or 0), device=device)
    return results, records


def _write_outputs(
    path: Path,
    results: dict[str, Any],
    records: list[dict[str, Any]],
    attack_set: AttackSet,
    dataset: SkeletonDataset,
    clean: np.ndarray,
    adversarial: np.ndarray,
    cfg: RunConfig,
) -> None:
    """samples.jsonl, adversarial.npz, then results.json (written last: its presence means complete)."""
    atomic_write_text(path / SAMPLES_FILE, "".join(json.dumps(jsonable(r)) + "\n" for r in records))
    arrays: dict[str, np.ndarray] = {
        "adversarial": adversarial,
        "clean": clean,
        "labels": attack_set.labels,
        "sample_ids": np.array(attack_set.sample_ids, dtype=str),
        "indices": attack_set.indices,
        "lengths": np.asarray(dataset.lengths)[attack_set.indices].astype(np.int64),
        "layout": np.array(dataset.layout.name),
        "class_names": np.array(dataset.class_names, dtype=str),
        "units": np.array(dataset.units),
        "dataset": np.array(cfg.dataset),
        "attack": np.array(cfg.attack),
        "eps": np.array(float(cfg.eps or 0.0)),
        "norm": np.array(cfg.norm),
        "attack_config": np.array(json.dumps(jsonable(results["attack_config"]), default=str)),
    }
    if attack_set.targets is not None:
        arrays["targets"] = attack_set.targets
    with atomic_path(path / ADVERSARIAL_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    atomic_write_json(path / RESULTS_FILE, jsonable(results))


__all__ = ["batch_seed", "run_cell"]
