"""Negatives of the hard no-box loss: K-means centres in the attacker's latent space.

Lu et al. (ICCV 2023), section 5: embed the unlabelled samples with the learned encoder, cluster the
L2-normalised embeddings with K-means (K = 120), and for each input discard the Q = 10 centres nearest to its
clean embedding; the remaining centres are its negatives ("high-density areas of other classes").

Small sets: K-means needs at least as many points as clusters, and 120 clusters on a few hundred samples are
mostly singletons. When K is not given explicitly, :func:`cluster_counts` applies the documented rule
``K = min(120, n // 2)`` (at least two samples per cluster on average) and scales Q with it,
``Q = round(10 * K / 120)`` kept within ``[0, K - 1]`` so at least one negative centre remains. An explicitly
requested K larger than ``n // 2`` is refused in one line. Fewer than 4 unlabelled samples cannot give two
clusters of two and are refused.

K-means here is Lloyd's algorithm with k-means++ seeding from a seeded generator (scikit-learn's
``KMeans(random_state=0)`` in the released code; the clusters agree up to the seeding's randomness).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError

#: The paper's cluster count and discarded nearest centres.
PAPER_CLUSTERS = 120
PAPER_DISCARD = 10
#: Fewest unlabelled samples the small-set rule accepts (two clusters of two).
MIN_SAMPLES = 4


def cluster_counts(n: int, clusters: int | None = None, discard: int | None = None) -> tuple[int, int, str]:
    """``(K, Q, rule)`` for ``n`` unlabelled samples (see the module docstring).

    Args:
        n: Number of unlabelled samples embedded.
        clusters: Explicit K, or None for the paper's 120 under the small-set rule.
        discard: Explicit Q, or None for the paper's 10 (scaled with K under the small-set rule).

    Raises:
        ConfigError: too few samples, an explicit K that the set cannot support, or Q >= K.
    """
    if n < MIN_SAMPLES and clusters is None:
        raise ConfigError(f"hard no-box: {n} unlabelled sample(s) are too few to cluster; need at least {MIN_SAMPLES}")
    if clusters is not None:
        if clusters < 2:
            raise ConfigError(f"hard no-box: clusters must be >= 2, got {clusters}")
        if clusters > n // 2:
            raise ConfigError(
                f"hard no-box: {clusters} clusters requested but only {n} unlabelled samples "
                f"(at most {n // 2} clusters, two samples each); pass fewer clusters or attack more samples"
            )
        k, rule = int(clusters), "explicit"
    else:
        k = min(PAPER_CLUSTERS, n // 2)
        rule = "paper (K=120, Q=10)" if k == PAPER_CLUSTERS else f"small set: K=min(120, n//2)={k}, Q scaled by K/120"
    if discard is not None:
        if not 0 <= discard < k:
            raise ConfigError(f"hard no-box: discard (Q) must be in [0, {k - 1}] for {k} clusters, got {discard}")
        q = int(discard)
    else:
        q = min(max(round(PAPER_DISCARD * k / PAPER_CLUSTERS), 0), k - 1)
    return k, q, rule


def kmeans(points: torch.Tensor, k: int, *, iterations: int = 100, seed: int = 0) -> torch.Tensor:
    """K-means centres ``(k, D)`` of ``points`` ``(n, D)``: k-means++ seeding, then Lloyd iterations.

    Deterministic for a given ``seed``. An empty cluster is re-seeded with the point farthest from its centre.
    """
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ConfigError(f"k-means: need 1 <= k <= n, got k={k}, n={n}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    pts = points.detach().double().cpu()
    first = int(torch.randint(n, (1,), generator=gen))
    centres = [pts[first]]
    dist = (pts - pts[first]).pow(2).sum(1)
    for _ in range(1, k):
        probs = dist / dist.sum() if dist.sum() > 0 else torch.full((n,), 1.0 / n, dtype=pts.dtype)
        pick = int(torch.multinomial(probs, 1, generator=gen))
        centres.append(pts[pick])
        dist = torch.minimum(dist, (pts - pts[pick]).pow(2).sum(1))
    c = torch.stack(centres)
    assign = torch.full((n,), -1, dtype=torch.long)
    for _ in range(iterations):
        d = torch.cdist(pts, c)
        new = d.argmin(1)
        if torch.equal(new, assign):
            break
        assign = new
        counts = torch.bincount(assign, minlength=k).to(pts.dtype)
        sums = torch.zeros_like(c).index_add_(0, assign, pts)
        empty = counts == 0
        c = torch.where(empty.unsqueeze(1), c, sums / counts.clamp_min(1).unsqueeze(1))
        for j in torch.nonzero(empty).flatten().tolist():
            far = int(d.gather(1, assign.unsqueeze(1)).squeeze(1).argmax())
            c[j] = pts[far]
    return c.to(points.dtype)


@dataclass
class ClusterNegatives:
    """The latent-space clusters of the unlabelled set and the per-sample choice of negatives.

    Attributes:
        centres: ``(K, D)`` K-means centres of the L2-normalised embeddings.
        discard: Q, the nearest centres dropped per input.
        rule: How K and Q were chosen (recorded with results).
    """

    centres: torch.Tensor
    discard: int
    rule: str

    @classmethod
    def fit(
        cls, embeddings: torch.Tensor, *, clusters: int | None = None, discard: int | None = None, seed: int = 0
    ) -> "ClusterNegatives":
        """Cluster ``embeddings`` ``(n, D)`` (normalised here) with K and Q from :func:`cluster_counts`."""
        k, q, rule = cluster_counts(int(embeddings.shape[0]), clusters, discard)
        centres = kmeans(F.normalize(embeddings.detach().float(), dim=1), k, seed=seed)
        return cls(centres=centres, discard=q, rule=rule)

    @property
    def clusters(self) -> int:
        return int(self.centres.shape[0])

    def select(self, clean: torch.Tensor) -> torch.Tensor:
        """Negatives ``(N, K - Q, D)`` for clean embeddings ``(N, D)``: the centres minus the Q nearest to each.

        Distances are Euclidean between the normalised embedding and the centres (the released code's rule).
        """
        centres = self.centres.to(device=clean.device, dtype=clean.dtype)
        d = torch.cdist(F.normalize(clean.detach(), dim=1), centres)  # (N, K)
        keep = d.argsort(dim=1)[:, self.discard :]  # farthest K - Q, nearest-first order dropped
        keep = keep.sort(dim=1).values  # centre order, independent of distance ties
        return centres[keep]

    def to_dict(self) -> dict[str, object]:
        return {"clusters": self.clusters, "discard": self.discard, "rule": self.rule}
