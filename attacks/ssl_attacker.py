"""The self-supervised attacker (Lu et al., ICCV 2023, baseline): a contrastive encoder plus a linear head, attacked transfer-style.

Paper: Lu, Wang, Chang, Yang, Shum, "Hard No-Box Adversarial Attack on Skeleton-Based Human Action Recognition
with Skeleton-Motion-Informed Gradient", ICCV 2023, https://arxiv.org/abs/2308.05681, section 6.1 ("Self-sup
Attacker"): the frozen contrastive encoder with a linear classifier trained with labels; its adversarial
examples are transferred to the victims.

Threat model ``own-surrogate``: the attack holds the training split with its labels and the true labels of
the samples it attacks, and no model at all; it builds its surrogate from them (the transferred black-box
column of the paper's Table 1, without a given surrogate). The runner passes the training split to
:meth:`prepare` and refuses ``--surrogate``. ``prepare`` learns the encoder on the training clips without
their labels (the hard no-box attacker's MoCo recipe and cache, :mod:`skelrobust.nobox.manifold`) or loads the
given ``encoder``, then trains the linear head with the labels (:mod:`skelrobust.nobox.probe`, cached). The
surrogate is then attacked with the project's ``ifgsm`` or ``mifgsm`` (``method``) at this attack's budget,
steps and masks; the built surrogate is :attr:`SSLAttacker.surrogate`.

Args:
    method: ``ifgsm`` (default) or ``mifgsm``: the transfer-style attack on the surrogate.
    encoder: A pretext checkpoint file, user code ``module:attr`` / ``file.py:attr``, or (from Python) an
        ``nn.Module`` ``(N, C, T, V, M) -> (N, D)``; None (default) learns one on the training clips.
    pretrain_steps, pretrain_batch_size, pretrain_seed: Encoder learning
        (:class:`~skelrobust.nobox.manifold.ManifoldConfig`).
    head_epochs, head_seed: Linear head training (:class:`~skelrobust.nobox.probe.ProbeConfig`: 100 epochs, seed 0).
    step_size, decay: Passed to ``method`` (``decay`` only to ``mifgsm``).
    cache: Cache the encoder and the head under ``SKELROBUST_HOME`` (default True).
    progress: Progress bars on stderr while learning the encoder (default True).
    **kwargs: eps, norm, steps, constraints, joints, frames, persons, unit (see :class:`Attack`).

Shape:
    ``(N, C, T, V, M)`` in the data's units, the same out.

Example:
    >>> attack = create_attack("ssl-attacker", eps=0.025, steps=400)
    >>> attack.prepare(model=None, train_data=load_dataset("synthetic", "train"), layout=layout, device=device)
    >>> out = attack(x, y, layout=layout)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from skelrobust.attack import Attack, AttackContext, ThreatModel, create_attack, register_attack
from skelrobust.errors import ConfigError, ThreatModelError
from skelrobust.layouts import SkeletonLayout
from skelrobust.nobox.access import UnlabelledSamples
from skelrobust.nobox.manifold import Manifold, ManifoldConfig, encoder_option, learn_manifold, user_encoder
from skelrobust.nobox.probe import LinearProbe, ProbeConfig, linear_probe

#: The transfer-style attacks the surrogate may be attacked with.
METHODS = ("ifgsm", "mifgsm")


@register_attack("ssl-attacker", paper="Lu et al., ICCV 2023 (self-supervised attacker baseline)",
                 url="https://arxiv.org/abs/2308.05681", needs_training_data=True)
class SSLAttacker(Attack):
    """I-FGSM / MI-FGSM on the attacker's own contrastive encoder plus linear head (see the module docstring)."""

    threat = ThreatModel.OWN_SURROGATE
    supports_targeted = True
    needs_training_data = True

    def __init__(
        self,
        *,
        method: str = "ifgsm",
        encoder: str | Path | nn.Module | None = None,
        pretrain_steps: int | None = None,
        pretrain_batch_size: int | None = None,
        pretrain_seed: int | None = None,
        head_epochs: int = 100,
        head_seed: int = 0,
        step_size: float | None = None,
        decay: float | None = None,
        cache: bool = True,
        progress: bool = True,
        steps: int = 400,
        **kwargs: Any,
    ) -> None:
        super().__init__(steps=steps, **kwargs)
        if method not in METHODS:
            raise ConfigError(f"{self.name}: method must be one of {', '.join(METHODS)}, got {method!r}")
        if decay is not None and method != "mifgsm":
            raise ConfigError(f"{self.name}: decay applies to method=mifgsm only")
        self.method = method
        self.encoder, self._encoder_module = encoder_option(self.name, encoder)
        self._manifold_config = ManifoldConfig.create(steps=pretrain_steps, batch_size=pretrain_batch_size, seed=pretrain_seed)
        self.pretrain_steps = self._manifold_config.steps
        self.pretrain_batch_size = self._manifold_config.batch_size
        self.pretrain_seed = self._manifold_config.seed
        self._probe_config = ProbeConfig(epochs=int(head_epochs), seed=int(head_seed))
        self.head_epochs = self._probe_config.epochs
        self.head_seed = self._probe_config.seed
        self.step_size = step_size
        self.decay = decay
        self.cache = bool(cache)
        self.progress = bool(progress)
        inner: dict[str, Any] = {"step_size": step_size, **({"decay": decay} if decay is not None else {})}
        self._attack = create_attack(method, eps=self.budget.eps, norm=self.budget.norm, unit=self.budget.unit, steps=self.steps,
                                     constraints=self.constraints, joints=self.masks.joints, frames=self.masks.frames,
                                     persons=self.masks.persons, **inner)
        self._surrogate: LinearProbe | None = None
        self._record: dict[str, Any] = {}

    @property
    def surrogate(self) -> LinearProbe:
        """The surrogate this attack built (after :meth:`prepare`): frozen encoder plus linear head."""
        if self._surrogate is None:
            raise ConfigError(
                f"{self.name}: call attack.prepare(model=None, train_data=<training split with labels>, layout=..., device=...) "
                "before attacking (it learns its encoder and linear head)"
            )
        return self._surrogate

    def prepare(self, *, model: nn.Module | None, train_data: Any, layout: SkeletonLayout, device: torch.device) -> None:
        """Learn (or load) the encoder on the training clips and train the linear head with their labels."""
        if model is not None:
            raise ThreatModelError(f"attack {self.name!r} builds its own surrogate: prepare must get no model")
        if train_data is None or not hasattr(train_data, "data") or not hasattr(train_data, "labels"):
            raise ConfigError(f"{self.name}: prepare needs the training split with its labels (a SkeletonDataset) as train_data")
        data = train_data.data
        layout.check_joints(int(data.shape[3]), f"{self.name} training data")
        num_classes = int(getattr(train_data, "num_classes", 0) or len(train_data.class_names))
        manifold = self._manifold(train_data, layout, device)
        identity = manifold.record.get("fingerprint") or manifold.record.get("sha256")
        cacheable = self.cache and identity is not None  # a user module has no content identity: train it every time
        self._surrogate, head = linear_probe(
            manifold.encoder, {"source": manifold.record.get("source"), "id": identity}, data, train_data.labels, num_classes,
            self._probe_config, device=device, cache=cacheable,
        )
        self._record = {"encoder": manifold.record, "head": head, "method": self.method}

    def _manifold(self, train_data: Any, layout: SkeletonLayout, device: torch.device) -> Manifold:
        if self._encoder_module is not None:
            return Manifold(encoder=self._encoder_module.to(device).eval().requires_grad_(False), record={"source": "module"})
        if self.encoder is not None:
            return user_encoder(self.encoder, layout=layout.name, num_persons=int(train_data.data.shape[4]), device=device)
        samples = UnlabelledSamples(np.asarray(train_data.data, dtype=np.float32), list(train_data.sample_ids), "train",
                                    str(getattr(train_data, "name", "")))
        return learn_manifold(samples, self._manifold_config, layout=layout.name, device=device, cache=self.cache, progress=self.progress)

    def run(self, ctx: AttackContext) -> torch.Tensor:
        out = self._attack(ctx.x, ctx.labels, layout=ctx.layout, model=self.surrogate, target=ctx.target,
                           generator=ctx.generator, sample_ids=ctx.sample_ids)
        ctx.iterations = out.iterations
        ctx.gradient_evaluations = out.gradient_evaluations
        ctx.final_loss = out.final_loss
        ctx.extras["ssl_attacker"] = self._record
        return out.adversarial
