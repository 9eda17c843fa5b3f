"""Diagonal Gaussian policies: log-density, entropy, KL divergence, and the tanh-squashed sample of SAC.

With ``std = exp(log_std)`` per action dimension and d dimensions:

* ``log N(a; mu, std) = sum_i [-(a_i - mu_i)^2 / (2 std_i^2) - log std_i] - d/2 log(2 pi)``;
* ``H = sum_i log std_i + d/2 (1 + log(2 pi))``;
* ``KL(N(mu, std) || N(mu', std')) = 1/2 sum_i [2 (log std'_i - log std_i) - 1 + std_i^2 / std'_i^2
  + (mu'_i - mu_i)^2 / std'_i^2]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Clamp of the SAC actor's log-std (as in the SAC reference code)."""


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """log N(action; mean, diag(exp(log_std))^2), summed over the last axis."""
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z.square()).sum(-1) - (log_std.sum(-1) + 0.5 * math.log(2 * math.pi) * z.shape[-1])


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of N(., diag(exp(log_std))^2), over the last axis."""
    return log_std.sum(-1) + 0.5 * (1.0 + math.log(2 * math.pi)) * log_std.shape[-1]


def gaussian_kl(mean: torch.Tensor, log_std: torch.Tensor, ref_mean: torch.Tensor,
                ref_log_std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_std)) || N(ref_mean, exp(ref_log_std))) of diagonal Gaussians, per row (the module's
    formula)."""
    var_ratio = torch.exp(2.0 * (log_std - ref_log_std))  # std_i^2 / std'_i^2
    log_det_ratio = 2.0 * (ref_log_std - log_std)  # log std'_i^2 / std_i^2
    mahalanobis = (ref_mean - mean).square() * torch.exp(-2.0 * ref_log_std)
    return 0.5 * (log_det_ratio - 1.0 + var_ratio + mahalanobis).sum(-1)


def squashed_gaussian(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """a = tanh(mean + std * noise) and log pi(a|s) with the tanh change of variables (SAC, Eq. 26):
    ``log pi(a|s) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)``.

    ``log(1 - tanh(u)^2)`` is computed as ``2 (log 2 - u - softplus(-2u))``,
    the overflow-free identity, instead of adding an epsilon inside the log.
    """
    u = mean + log_std.exp() * noise
    log_prob = (-0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_prob = log_prob - (2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))).sum(-1)
    return torch.tanh(u), log_prob
