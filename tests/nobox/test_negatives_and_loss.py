"""K-means negatives (counts rule, clustering, nearest-centre exclusion) and the no-box loss of Eq. 2."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from skelrobust.errors import ConfigError
from skelrobust.nobox.loss import nobox_loss
from skelrobust.nobox.negatives import ClusterNegatives, cluster_counts, kmeans


def test_cluster_counts_paper_and_small_set_rule() -> None:
    assert cluster_counts(16_000)[:2] == (120, 10)
    assert cluster_counts(240)[:2] == (120, 10)
    k, q, rule = cluster_counts(64)
    assert (k, q) == (32, 3) and "small set" in rule
    assert cluster_counts(4)[:2] == (2, 0)
    assert cluster_counts(64, clusters=20, discard=5)[:2] == (20, 5)


def test_cluster_counts_refusals_are_one_line() -> None:
    with pytest.raises(ConfigError, match="120 clusters requested but only 64 unlabelled samples"):
        cluster_counts(64, clusters=120)
    with pytest.raises(ConfigError, match="too few to cluster"):
        cluster_counts(3)
    with pytest.raises(ConfigError, match=r"discard \(Q\) must be in \[0, 9\]"):
        cluster_counts(100, clusters=10, discard=10)


def test_kmeans_recovers_separated_blobs_deterministically() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    points = torch.cat([c + 0.1 * torch.randn(30, 2, generator=g) for c in centres])
    found = kmeans(points, 3, seed=1)
    assert torch.equal(found, kmeans(points, 3, seed=1))
    dist = torch.cdist(centres, found).min(dim=1).values
    assert (dist < 0.1).all(), dist


def test_negatives_drop_the_nearest_centres() -> None:
    centres = F.normalize(torch.eye(6), dim=1)
    neg = ClusterNegatives(centres=centres, discard=2, rule="explicit")
    clean = torch.tensor([[1.0, 0.9, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    out = neg.select(clean)
    assert out.shape == (2, 4, 6)
    kept0 = out[0].argmax(dim=1).tolist()
    assert sorted(kept0) == [2, 3, 4, 5]  # centres 0 and 1 are the two nearest to sample 0
    assert 4 not in out[1].argmax(dim=1).tolist()


def test_fit_uses_the_rule_and_normalises() -> None:
    emb = torch.randn(50, 8, generator=torch.Generator().manual_seed(0)) * 10
    neg = ClusterNegatives.fit(emb)
    assert neg.clusters == 25 and neg.discard == 2
    assert neg.centres.shape == (25, 8)
    assert (neg.centres.norm(dim=1) <= 1 + 1e-5).all()  # centres of unit vectors, not of the raw (norm ~28) ones


def test_loss_is_cross_entropy_over_cosines() -> None:
    g = torch.Generator().manual_seed(0)
    z, p, negs = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    cos = F.cosine_similarity
    logits = torch.cat([cos(z, p).unsqueeze(1), cos(z.unsqueeze(1), negs, dim=2)], dim=1)
    expected = -logits.log_softmax(dim=1)[:, 0]
    assert torch.allclose(nobox_loss(z, p, negs), expected, atol=1e-6)
    assert torch.allclose(nobox_loss(z, p, negs, temperature=0.5), -(logits / 0.5).log_softmax(1)[:, 0], atol=1e-6)
    # batch-mates: the other samples' clean embeddings join the denominator
    mates = torch.stack([torch.stack([cos(z[i], p[j], dim=0) for j in range(3) if j != i]) for i in range(3)])
    with_mates = torch.cat([logits, mates], dim=1)
    assert torch.allclose(nobox_loss(z, p, negs, batch_negatives=True), -with_mates.log_softmax(1)[:, 0], atol=1e-6)


def test_ascending_the_loss_leaves_the_clean_embedding() -> None:
    g = torch.Generator().manual_seed(1)
    p, negs = torch.randn(4, 6, generator=g), torch.randn(4, 5, 6, generator=g)
    z = p.clone().requires_grad_(True)
    before = nobox_loss(z, p, negs)
    (grad,) = torch.autograd.grad(before.sum(), z)
    after = nobox_loss(z + 0.05 * grad, p, negs)
    assert (after > before).all()
    assert (F.cosine_similarity(z + 0.05 * grad, p) < 1).all()


def test_loss_shape_errors() -> None:
    with pytest.raises(ConfigError, match="negatives must be"):
        nobox_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4, 5))
