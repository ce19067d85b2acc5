"""Lesson 2's data and judges: scikit-learn's handwritten digits as 16x16 token grids.

The 1,797 digits (8x8, grey levels 0..16, ten classes) ship inside scikit-learn: nothing is
downloaded. Each is upsampled bilinearly to 16x16 - the token grid of a 256-px ImageNet image
under a 16x VQ tokenizer - and quantised to 16 levels, so a "token" is a grey level and the
vocabulary has 16 entries. A stratified fifth of the images is held out.

The judges are fitted on the real training grids only: an RBF support-vector classifier (class
accuracy of samples; 98.6% on the held-out real grids) and a PCA feature space (a Fréchet distance
between generated and held-out real grids, the FID recipe on features that fit this data).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

GRID = (16, 16)
VOCAB = 16
CLASSES = 10
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def token_grids() -> tuple[np.ndarray, np.ndarray]:
    """Every digit as a token grid: tokens int64 [1797, 256] (raster order, values 0..15), labels [1797]."""
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    up = torch.nn.functional.interpolate(x, size=GRID, mode="bilinear", align_corners=False)[:, 0]
    tokens = torch.round(up * (VOCAB - 1)).clamp(0, VOCAB - 1).long().reshape(len(x), -1)
    return tokens.numpy(), d.target.astype(np.int64)


def split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (tokens, labels), "test": (tokens, labels)}: the fixed stratified split."""
    tokens, labels = token_grids()
    train, test = train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels)
    return {"train": (tokens[train], labels[train]), "test": (tokens[test], labels[test])}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2) between two feature sets [n, d]."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = scipy.linalg.sqrtm(s_a @ s_b, disp=False)
    fd = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2.0 * root.real))
    if not np.isfinite(fd):
        raise ValueError("Fréchet distance is not finite")
    return fd


class Judge:
    """The classifier and the feature space, fitted once on the real training grids."""

    FEATURES = 20

    def __init__(self, data=None):
        data = data or split()
        x, y = data["train"]
        self.classifier = SVC(gamma="scale").fit(self._pixels(x), y)
        self.pca = PCA(self.FEATURES, random_state=0).fit(self._pixels(x))
        self.reference = self.features(data["test"][0])

    @staticmethod
    def _pixels(tokens) -> np.ndarray:
        return np.asarray(tokens, dtype=np.float64).reshape(len(tokens), -1) / (VOCAB - 1)

    def features(self, tokens) -> np.ndarray:
        return self.pca.transform(self._pixels(tokens))

    def accuracy(self, tokens, labels) -> float:
        """The fraction of grids the classifier reads as the class they were generated for."""
        return float((self.classifier.predict(self._pixels(tokens)) == np.asarray(labels)).mean())

    def frechet(self, tokens) -> float:
        """Fréchet distance from the held-out real grids, in the PCA feature space."""
        return frechet_distance(self.features(tokens), self.reference)
