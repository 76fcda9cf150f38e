"""Terms of task=recommendation: BPR for implicit feedback, and the L2 of the user and item
parameters a batch touches (Funk SVD's and Surprise's regulariser)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def bpr(pos_score: Tensor, neg_score: Tensor) -> Tensor:
    """Bayesian personalised ranking (Rendle et al. 2009): mean of −log σ(s_ui − s_uj) over
    (user, observed item i, sampled unobserved item j) triples; softplus(s_uj − s_ui) is the
    same number without overflow."""
    return F.softplus(neg_score - pos_score).mean()


def embedding_l2(*parameters: Tensor) -> Tensor:
    """The mean over the batch's rows of the squared entries of each row's parameters:
    ‖p_u‖² + ‖q_i‖² + b_u² + b_i² a rating (explicit), ‖p_u‖² + ‖q_i‖² + ‖q_j‖² + b_i² + b_j²
    a triple (implicit). Row r of every tensor belongs to row r of the batch."""
    total = parameters[0].new_zeros(())
    for part in parameters:
        total = total + part.square().reshape(len(part), -1).sum(1).mean()
    return total
