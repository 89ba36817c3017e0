"""Self-supervised losses, one function each."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def distributed_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the running process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGather(torch.autograd.Function):
    """``all_gather`` along dim 0 whose backward gives each rank the gradient of its own rows,
    summed over the ranks whose losses used them."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


class _AllReduce(torch.autograd.Function):
    """Sum over ranks; the gradient of a sum every rank uses is the sum of their gradients."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


def all_gather_with_grad(x: Tensor) -> Tensor:
    """The rows of ``x`` from every rank, in rank order, differentiable (equal shapes needed).

    (``torch.distributed.nn.functional.all_gather`` does the same but is deprecated.)
    """
    return _AllGather.apply(x)


def all_reduce_with_grad(x: Tensor) -> Tensor:
    """The sum of ``x`` over ranks, differentiable."""
    return _AllReduce.apply(x)


def nt_xent(
    z1: Tensor, z2: Tensor, temperature: float = 0.5, *, gather: bool | None = None
) -> Tensor:
    """SimCLR's normalised temperature-scaled cross entropy over the 2B views of B images.

    Row i of ``z1`` and row i of ``z2`` are the two views of image i. Each of the 2B views is
    an anchor whose positive is its twin and whose negatives are the other 2B - 2 views:
    ``loss = mean over anchors a of -log softmax(cos(a, .) / temperature)[twin(a)]``, the
    anchor itself left out of the softmax.

    Under ``torch.distributed`` the embeddings of every rank are gathered (with autograd, so
    gradients reach the rank that computed them) and serve as negatives; each rank averages the
    loss over its own anchors. Averaging the ranks' gradients (as DistributedDataParallel does)
    then gives exactly the gradient of the loss on the global batch.

    Parameters
    ----------
    z1, z2 : Tensor
        (B, D) projections of the two views (normalised here).
    temperature : float
        Softmax temperature (the paper: 0.5).
    gather : bool, optional
        Gather negatives from all ranks; by default whenever a process group of more than
        one rank is running.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1 and z2 must both be (B, D), got {tuple(z1.shape)}, {tuple(z2.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z1 = F.normalize(z1.float(), dim=1)
    z2 = F.normalize(z2.float(), dim=1)
    rank, world = distributed_world()
    if gather is None:
        gather = world > 1
    if gather and world > 1:
        keys1, keys2 = all_gather_with_grad(z1), all_gather_with_grad(z2)
    else:
        rank, keys1, keys2 = 0, z1, z2
    b, n = z1.shape[0], keys1.shape[0]
    anchors = torch.cat([z1, z2])
    logits = anchors @ torch.cat([keys1, keys2]).T / temperature  # (2B, 2N)
    own = torch.arange(b, device=z1.device) + rank * b  # the local images' rows among the N
    self_col = torch.cat([own, own + n])
    twin_col = torch.cat([own + n, own])
    rows = torch.arange(2 * b, device=z1.device)
    logits[rows, self_col] = float("-inf")
    return F.cross_entropy(logits, twin_col)


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """SimSiam's loss for one direction: minus the mean cosine similarity between the
    predictions ``p`` and the projections ``z`` of the other view, with no gradient through
    ``z`` (the stop-gradient that keeps SimSiam from collapsing). Both (B, D)."""
    if p.shape != z.shape or p.dim() != 2:
        raise ValueError(f"p and z must both be (B, D), got {tuple(p.shape)}, {tuple(z.shape)}")
    return -(F.normalize(p.float(), dim=1) * F.normalize(z.detach().float(), dim=1)).sum(1).mean()


def dino_loss(
    student: list[Tensor],
    teacher: list[Tensor],
    center: Tensor,
    *,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
) -> Tensor:
    """DINO's cross-entropy between the teacher's centred, sharpened distribution of one view
    and the student's distribution of every *other* view, averaged over the view pairs.

    Parameters
    ----------
    student : the student's head outputs, one (B, K) tensor per view.
    teacher : the teacher's head outputs for the global views, one (B, K) tensor each; view
        i of ``teacher`` is view i of ``student``.
    center : (K,) running mean of the teacher's outputs, subtracted before the softmax (with
        the low teacher temperature, centring and sharpening keep the outputs from collapsing).
    student_temperature, teacher_temperature : the two softmax temperatures.
    """
    if not student or not teacher or len(teacher) > len(student):
        raise ValueError("need at least one teacher view and as many student views")
    targets = [
        F.softmax((t.detach().float() - center) / teacher_temperature, dim=1) for t in teacher
    ]
    logs = [F.log_softmax(s.float() / student_temperature, dim=1) for s in student]
    total, pairs = 0.0, 0
    for i, target in enumerate(targets):
        for j, log_p in enumerate(logs):
            if i == j:
                continue  # a view does not predict itself
            total = total + (-(target * log_p).sum(dim=1)).mean()
            pairs += 1
    if pairs == 0:
        raise ValueError("DINO needs at least two views")
    return total / pairs
