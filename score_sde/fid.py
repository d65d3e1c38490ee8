"""Feature-space sample-quality scores: Frechet distance (FID), KID and Inception score.

All three take features (or class probabilities) already computed by a network (Inception-v3 in
`score_sde.inception`, the digits classifier in `score_sde.digits_metric`) and are plain float64
numpy on the host: they are O(d^3) or O(n^2 d) once per evaluation, not worth a device.

    FD(N(mu1, S1), N(mu2, S2)) = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))
    KID = unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, averaged over random subsets
    IS = exp(E_x KL(p(y | x) || p(y))),  p(y) = E_x p(y | x)
"""

import warnings
from typing import Tuple

import numpy as np

# FID is biased upward at small n (the bias decays like 1/n); published numbers use 50k samples.
FID_RECOMMENDED_SAMPLES = 50_000


def feature_statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(mu [d], sigma [d, d]) of features [n, d]: mean and unbiased (n - 1) covariance."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise ValueError(f"feature_statistics needs features [n >= 2, d], got {features.shape}")
  return features.mean(0), np.cov(features, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues -> 0)."""
  w, v = np.linalg.eigh((s + s.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(
  mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
  """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2), squared.

  FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)); mu: [d], sigma: [d, d].
  tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(S1^(1/2) S2 S1^(1/2))): S1 S2 is similar to that
  symmetric PSD matrix, so this needs no general (complex) matrix square root and stays finite
  for singular covariances (e.g. fewer samples than dimensions).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(
      f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, "
      f"sigma {sigma1.shape} vs {sigma2.shape}"
    )
  root1 = _psd_sqrt(sigma1)
  lam = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
  tr_covmean = np.sum(np.sqrt(np.clip(lam, 0, None)))
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def fid_from_features(
  features: np.ndarray,
  mu_ref: np.ndarray,
  sigma_ref: np.ndarray,
  warn_below: int = FID_RECOMMENDED_SAMPLES,
) -> float:
  """FD between the Gaussian fitted to features [n, d] and reference statistics (mu, sigma).

  Warns when n < warn_below: FID is biased upward at small n and not comparable across n.
  """
  n = len(features)
  if n < warn_below:
    warnings.warn(
      f"FID from {n} samples (< {warn_below}): it is biased upward at small sample "
      "sizes and only comparable with FIDs from the same number of samples",
      stacklevel=2,
    )
  mu, sigma = feature_statistics(features)
  return frechet_distance(mu, sigma, mu_ref, sigma_ref)


def polynomial_mmd2_unbiased(
  x: np.ndarray, y: np.ndarray, degree: int = 3, gamma=None, coef0: float = 1.0
) -> float:
  """Unbiased MMD^2 between x: [n, d] and y: [m, d] with k(a, b) = (gamma a.b + coef0)^degree.

  MMD^2 = sum_{i != j} k(x_i, x_j) / (n (n - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
          - 2 sum_{i, j} k(x_i, y_j) / (n m);  gamma defaults to 1 / d.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  n, m = len(x), len(y)
  gamma = 1.0 / x.shape[1] if gamma is None else gamma
  kxx = (gamma * x @ x.T + coef0) ** degree
  kyy = (gamma * y @ y.T + coef0) ** degree
  kxy = (gamma * x @ y.T + coef0) ** degree
  return float(
    (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    - 2 * kxy.mean()
  )


def kernel_inception_distance(
  x: np.ndarray,
  y: np.ndarray,
  rng: np.random.Generator,
  num_subsets: int = 100,
  subset_size: int = 1000,
) -> Tuple[float, float]:
  """KID: mean and standard deviation over `num_subsets` random subsets of the unbiased cubic
  polynomial-kernel MMD^2 (`polynomial_mmd2_unbiased`, gamma = 1 / d, coef0 = 1) between
  features x: [n, d] and y: [m, d]; each subset draws min(subset_size, n, m) rows of each
  without replacement (Binkowski et al. 2018; the subset scheme of TF-GAN / clean-fid).
  """
  size = min(subset_size, len(x), len(y))
  if size < 2:
    raise ValueError(f"KID needs at least 2 features in each set, got {len(x)} and {len(y)}")
  values = [
    polynomial_mmd2_unbiased(
      x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)]
    )
    for _ in range(num_subsets)
  ]
  return float(np.mean(values)), float(np.std(values))


def inception_score(logits: np.ndarray, num_splits: int = 10) -> Tuple[float, float]:
  """Inception score from class logits [n, K]: mean and std over `num_splits` equal splits of
  exp(mean_i KL(p(y | x_i) || p_split(y))), p_split(y) = mean_i p(y | x_i) within the split
  (Salimans et al. 2016; the split convention of the original code and TF-GAN).
  """
  logits = np.asarray(logits, np.float64)
  logp = logits - logits.max(1, keepdims=True)
  logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
  scores = []
  for part in np.array_split(logp, num_splits):
    log_marginal = np.log(np.exp(part).mean(0))
    kl = np.sum(np.exp(part) * (part - log_marginal), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))
