"""How well two embeddings of the same things find each other: top-1 retrieval and
classification by the nearest class text (CLIP's zero-shot classification).

Features are compared by cosine similarity, on whole splits, without gradient, in float32.
A hit is judged by label: the captions here come from a handful of templates, so many pairs
share the very same text (same features), and which of the identical captions is "the"
image's own cannot be told apart; a retrieved caption (image) of the query's digit is a hit.
Each returns a 0-d float tensor on the features' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _unit(features: Tensor) -> Tensor:
    return F.normalize(features.float(), dim=1)


@torch.no_grad()
def retrieval_top1(
    queries: Tensor, keys: Tensor, query_labels: Tensor, key_labels: Tensor
) -> Tensor:
    """The share of queries whose most similar key has the query's label."""
    nearest = (_unit(queries) @ _unit(keys).T).argmax(dim=1)
    return (key_labels[nearest] == query_labels).float().mean()


@torch.no_grad()
def nearest_class_accuracy(features: Tensor, class_features: Tensor, labels: Tensor) -> Tensor:
    """The share of rows whose most similar class embedding (row c: class c's text) is their
    label's."""
    predicted = (_unit(features) @ _unit(class_features).T).argmax(dim=1)
    return (predicted == labels).float().mean()
