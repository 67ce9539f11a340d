"""The hard no-box adversarial loss (Lu et al., ICCV 2023, Eq. 2).

``L_adv(s) = -log( exp(Sim(f(s), f(s~))) / sum_j exp(Sim(f(s), f(s~_j))) )`` with ``s`` the adversarial
sample, ``s~`` its clean version (the positive, also in the denominator), ``s~_j`` the candidates (the positive
and the negatives), ``Sim`` the cosine similarity and ``f`` the attacker's frozen encoder. The attack
**maximises** it: it pushes the sample away from its own clean embedding and towards the negatives, the
K-means centres of other regions of the latent space (:mod:`skelrobust.nobox.negatives`).

The released code divides by no temperature (``tau = 1``, the default here) and, with ``batch_negatives``,
adds the clean embeddings of the other samples of the batch as negatives (not in the paper; an option, on in
``compat="hardnobox"``). Per sample this is a cross-entropy with the positive as class 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def nobox_loss(
    adversarial: torch.Tensor,
    clean: torch.Tensor,
    negatives: torch.Tensor,
    *,
    batch_negatives: bool = False,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Per-sample ``L_adv`` ``(N,)`` to maximise (differentiable in ``adversarial``).

    Args:
        adversarial: ``(N, D)`` embeddings of the current adversarial samples.
        clean: ``(N, D)`` embeddings of their clean versions (the positives; treated as constants).
        negatives: ``(N, J, D)`` per-sample negatives (e.g. :meth:`ClusterNegatives.select`).
        batch_negatives: Also use the other batch samples' clean embeddings as negatives.
        temperature: Divides the cosine similarities (1: none, as the paper's code).
    """
    if adversarial.ndim != 2 or clean.shape != adversarial.shape:
        raise ConfigError(f"no-box loss: embeddings must be (N, D) and equal, got {tuple(adversarial.shape)}, {tuple(clean.shape)}")
    if negatives.ndim != 3 or negatives.shape[0] != adversarial.shape[0] or negatives.shape[2] != adversarial.shape[1]:
        raise ConfigError(f"no-box loss: negatives must be (N, J, D) = ({adversarial.shape[0]}, J, {adversarial.shape[1]}), got {tuple(negatives.shape)}")
    if not temperature > 0:
        raise ConfigError(f"no-box loss: temperature must be > 0, got {temperature}")
    z = F.normalize(adversarial, dim=1)
    positive = F.normalize(clean.detach(), dim=1)
    logits = [(z * positive).sum(1, keepdim=True), torch.einsum("nd,njd->nj", z, F.normalize(negatives.detach(), dim=2))]
    if batch_negatives and z.shape[0] > 1:
        mates = z @ positive.T  # (N, N): similarity to every clean batch sample
        others = ~torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
        logits.append(mates[others].view(z.shape[0], z.shape[0] - 1))
    logits_all = torch.cat(logits, dim=1) / temperature
    target = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
    return F.cross_entropy(logits_all, target, reduction="none")
