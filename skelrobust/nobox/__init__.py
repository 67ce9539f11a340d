"""The hard no-box threat model (Lu et al., ICCV 2023): what the attacker holds and how it uses it.

Public parts:

- :mod:`.access`: :class:`UnlabelledSamples` and the runner's enforcement of the threat model
  (:func:`hard_no_box_config`, :func:`unlabelled_samples`);
- :mod:`.manifold`: the attacker's contrastive encoder, learned on unlabelled samples and cached, or loaded
  (:func:`learn_manifold`, :func:`load_encoder`, :class:`ManifoldConfig`);
- :mod:`.negatives`: K-means negatives in latent space (:class:`ClusterNegatives`, :func:`cluster_counts`);
- :mod:`.loss`: the adversarial loss of the paper's Eq. 2 (:func:`nobox_loss`);
- :mod:`.probe`: the paper's self-supervised attacker baseline, a linear head trained with labels on the
  frozen encoder (:func:`linear_probe`, :class:`LinearProbe`, :class:`ProbeConfig`), cached.

The attacks themselves (``s1i``, ``s2i``, ``s1mi``, ``s2mi``, ``nobox-ifgsm``, ``nobox-mifgsm``) are in
``skelrobust.attacks.nobox``, the self-supervised attacker (``ssl-attacker``, threat model own-surrogate) in
``skelrobust.attacks.ssl_attacker``; the SMI gradient they use is :mod:`skelrobust.smi`.
"""

from .access import MANIFOLD_SPLITS, UnlabelledSamples, hard_no_box_config, unlabelled_samples
from .loss import nobox_loss
from .manifold import Manifold, ManifoldConfig, learn_manifold, load_encoder
from .negatives import ClusterNegatives, cluster_counts, kmeans
from .probe import LinearProbe, ProbeConfig, linear_probe

__all__ = [
    "MANIFOLD_SPLITS", "UnlabelledSamples", "hard_no_box_config", "unlabelled_samples", "nobox_loss",
    "Manifold", "ManifoldConfig", "learn_manifold", "load_encoder", "ClusterNegatives", "cluster_counts", "kmeans",
    "LinearProbe", "ProbeConfig", "linear_probe",
]
