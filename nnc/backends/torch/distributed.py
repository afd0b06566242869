"""Data-parallel training on torch: joining torchrun's process group, and batchnorm
over the global batch.

nnc's runtime adapter (:mod:`nnc.backends.torch.runtime`) trains data-parallel when
it is built with ``distributed=True`` inside a process that torchrun started:
:func:`init_distributed` joins the process group (gloo on the CPU, nccl on CUDA),
the model is wrapped in ``DistributedDataParallel``, and each worker trains on its
slice of every global batch. ``docs/distributed.md`` explains the gradient weighting
(``share``) and why batchnorm needs :class:`GlobalBatchNorm`: ``nn.SyncBatchNorm``
refuses CPU modules under DDP.

This is ordinary code, the same for every model; the generated module knows nothing
of it. Importing it imports torch.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def init_distributed(device: str = "cpu", timeout: float = 300.0) -> str:
    """Join the data-parallel process group that torchrun describes in the
    environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): gloo on the
    CPU, nccl on CUDA, where each worker takes the GPU of its LOCAL_RANK. Returns this
    worker's device. A collective waits at most ``timeout`` seconds for the other
    workers, so a lost worker stops the others instead of hanging."""
    if torch.device(device).type == "cuda":
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    return device


class AllReduceSum(torch.autograd.Function):
    """The sum of a tensor over the data-parallel workers. Its gradient is the sum of
    the workers' gradients, so backpropagation through global statistics is exact."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:
        total = grad_output.clone()
        dist.all_reduce(total)
        return total


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    result: torch.Tensor = AllReduceSum.apply(tensor)
    return result


class GlobalBatchNorm(nn.Module):
    """nnc's batchnorm over the global batch of data-parallel training.

    In training mode the per-channel sums behind the batch mean and the (biased)
    variance are summed over the workers, so every worker normalises its slice with
    the statistics of the whole global batch and moves the running statistics as one
    process training on that batch would (the variance unbiased by n / (n - 1), n
    counted over all workers). Evaluation uses the running statistics and does not
    communicate. It takes over the parameters and buffers of the BatchNorm it
    replaces; ``nn.SyncBatchNorm`` does the same on GPUs only.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, batchnorm: nn.BatchNorm1d | nn.BatchNorm2d):
        super().__init__()
        self.eps = batchnorm.eps
        self.momentum = float(batchnorm.momentum or 0.0)
        self.weight, self.bias = batchnorm.weight, batchnorm.bias
        assert batchnorm.running_mean is not None and batchnorm.running_var is not None
        self.register_buffer("running_mean", batchnorm.running_mean)
        self.register_buffer("running_var", batchnorm.running_var)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        axes = [0, *range(2, x.dim())]  # every axis but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_full((1,), x.numel() // x.shape[1])  # values per channel here
        totals = all_reduce_sum(torch.cat([x.sum(axes), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centred = x - mean.reshape(shape)
        variance = all_reduce_sum(centred.square().sum(axes)) / n
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * variance * n / torch.clamp(n - 1, min=1))
        scale = self.weight * torch.rsqrt(variance + self.eps)
        return centred * scale.reshape(shape) + self.bias.reshape(shape)


def use_global_batchnorm(module: nn.Module) -> None:
    """Replace every BatchNorm under ``module`` by a GlobalBatchNorm holding the same
    parameters and buffers, so canonical names still find them."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d | nn.BatchNorm2d):
            setattr(module, name, GlobalBatchNorm(child))
        else:
            use_global_batchnorm(child)


__all__ = ["AllReduceSum", "GlobalBatchNorm", "init_distributed", "use_global_batchnorm"]
