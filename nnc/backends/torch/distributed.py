"""The data-parallel half of a generated torch module: joining torchrun's process
group, and batchnorm over the global batch.

A generated module trains data-parallel when its ``Runtime`` is built with
``distributed=True`` inside a process that torchrun started (or with ``fit(...,
distributed=True)``): ``init_distributed`` joins the process group (gloo on the CPU,
nccl on CUDA), the model is wrapped in ``DistributedDataParallel``, and each worker
trains on its slice of every global batch. ``docs/distributed.md`` explains the
gradient weighting (``share``) and why batchnorm needs ``GlobalBatchNorm``:
``nn.SyncBatchNorm`` refuses CPU modules under DDP.

The snippets are fixed code: nothing from the spec reaches them.
"""

from __future__ import annotations

from nnc.backends.codegen import CodeWriter

# Top-level names these snippets define (model classes must avoid them).
DISTRIBUTED_NAMES = frozenset(
    {
        "os",
        "datetime",
        "gc",
        "dist",
        "DistributedDataParallel",
        "init_distributed",
        "AllReduceSum",
        "GlobalBatchNorm",
        "use_global_batchnorm",
    }
)

_INIT = '''
def init_distributed(device='cpu', timeout=300):
    """Join the data-parallel process group that torchrun describes in the
    environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): gloo on
    the CPU, nccl on CUDA, where each worker takes the GPU of its LOCAL_RANK.
    Returns this worker's device. A collective waits at most `timeout` seconds
    for the other workers, so a lost worker stops the others instead of hanging.
    """
    if torch.device(device).type == 'cuda':
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = 'nccl' if device.startswith('cuda') else 'gloo'
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    return device
'''

_GLOBAL_BATCHNORM = '''
class AllReduceSum(torch.autograd.Function):
    """The sum of a tensor over the data-parallel workers. Its gradient is the sum of
    the workers' gradients, so backpropagation through global statistics is exact."""

    @staticmethod
    def forward(ctx, tensor):
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad_output):
        total = grad_output.clone()
        dist.all_reduce(total)
        return total


class GlobalBatchNorm(nn.Module):
    """nnc's batchnorm over the global batch of data-parallel training.

    In training mode the per-channel sums behind the batch mean and the (biased)
    variance are summed over the workers, so every worker normalises its slice
    with the statistics of the whole global batch and moves the running statistics
    as one process training on that batch would (the variance unbiased by
    n / (n - 1), n counted over all workers). Evaluation uses the running
    statistics and does not communicate. It takes over the parameters and buffers
    of the BatchNorm it replaces; nn.SyncBatchNorm does the same on GPUs only.
    """

    def __init__(self, batchnorm):
        super().__init__()
        self.eps, self.momentum = batchnorm.eps, batchnorm.momentum
        self.weight, self.bias = batchnorm.weight, batchnorm.bias
        self.register_buffer('running_mean', batchnorm.running_mean)
        self.register_buffer('running_var', batchnorm.running_var)

    def forward(self, x):
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                self.bias, False, 0.0, self.eps)
        axes = [0, *range(2, x.dim())]  # every axis but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_full((1,), x.numel() // x.shape[1])  # values per channel here
        totals = AllReduceSum.apply(torch.cat([x.sum(axes), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centred = x - mean.reshape(shape)
        variance = AllReduceSum.apply(centred.square().sum(axes)) / n
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean)
            self.running_var.mul_(1 - m).add_(m * variance * n / torch.clamp(n - 1, min=1))
        scale = self.weight * torch.rsqrt(variance + self.eps)
        return centred * scale.reshape(shape) + self.bias.reshape(shape)


def use_global_batchnorm(module):
    """Replace every BatchNorm under `module` by a GlobalBatchNorm holding the same
    parameters and buffers, so canonical names still find them."""
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, GlobalBatchNorm(child))
        else:
            use_global_batchnorm(child)
'''


# What the snippets and the Runtime's data-parallel code import.
STDLIB_IMPORTS = frozenset({"datetime", "gc", "os"})
TORCH_IMPORTS = (
    "import torch.distributed as dist",
    "from torch.nn.parallel import DistributedDataParallel",
)


def emit_distributed(w: CodeWriter, batchnorm: bool) -> None:
    """``init_distributed`` and, for models with batchnorm, ``GlobalBatchNorm``."""
    w.lines_(_INIT.strip("\n").splitlines())
    if batchnorm:
        w.blank(2)
        w.lines_(_GLOBAL_BATCHNORM.strip("\n").splitlines())
