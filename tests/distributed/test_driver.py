"""The data-parallel side of the training driver, without any framework: workers are
threads, each running the real Trainer on a NumPy runtime whose collectives sum over
the threads. Data-parallel training must make the updates of one process training
on the whole global batch (mean and summed losses, uneven and empty slices), agree
on when to stop, and leave the run folder to rank 0 alone."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.data import prepare
from nnc.errors import TrainingError
from nnc.ir.training import Recipe
from nnc.ir.weights import init_weights
from nnc.train.checkpoint import list_checkpoints, read_checkpoint
from nnc.train.distributed.group import DataParallel, check_no_empty_slices, shard, share
from nnc.train.loop import Trainer, TrainResult
from nnc.train.metrics import Metrics
from nnc.train.run import make_plan, monitor_of, resolve_run
from nnc.train.rundir import RunDir
from tests.train.fakes import FakeRuntime

SPEC = """
model Soft {{
    input x: [{features}]
    dense({units})
}}

train Soft {{
    data        {data}
    standardize true
    validation  0.2
    loss        {loss}
    optimizer   sgd(lr = {lr}, momentum = 0.9)
    epochs      3
    batch       {batch}
    metrics     {metrics}
    seed        3
}}
"""


class Exchange:
    """Element-wise sums over ``size`` threads, in rank order (so every thread gets
    the very same result, as from a real all-reduce)."""

    def __init__(self, size: int):
        self.slots: list[np.ndarray] = [np.zeros(0)] * size
        self.barrier = threading.Barrier(size)

    def sum(self, rank: int, values: np.ndarray) -> np.ndarray:
        self.slots[rank] = np.asarray(values, dtype=np.float64)
        self.barrier.wait(timeout=30)
        total = np.sum(self.slots, axis=0)
        self.barrier.wait(timeout=30)
        return total


class ThreadWorker(FakeRuntime):
    """One data-parallel worker: its gradient, weighted by its share, is summed over
    the workers before the (identical) SGD update."""

    def __init__(
        self, weights: Mapping[str, np.ndarray], recipe: Recipe, rank: int, exchange: Exchange
    ):
        super().__init__(weights, recipe)
        self.rank, self.world_size, self.exchange = rank, len(exchange.slots), exchange

    def all_reduce(self, values: np.ndarray) -> np.ndarray:
        return self.exchange.sum(self.rank, values)

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float, share: float = 1.0) -> float:
        names = ("dense_1.weight", "dense_1.bias")
        if len(x):
            loss, grads = self.loss(x, y), self.gradients(x, y)
        else:
            loss, grads = math.nan, {n: np.zeros_like(self.velocity[n]) for n in names}
        flat = np.concatenate([share * grads[n].reshape(-1) for n in names])
        total = self.all_reduce(flat)
        for name, param in (("dense_1.weight", self.w), ("dense_1.bias", self.b)):
            part, total = total[: param.size], total[param.size :]
            v = self.momentum * self.velocity[name] + part.reshape(param.shape).astype(np.float32)
            self.velocity[name] = v = v.astype(np.float32)
            param -= (lr * v).astype(np.float32)
        return loss


def trainer(
    spec: str,
    runtime: FakeRuntime,
    group: DataParallel | None,
    run_dir: Path | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Trainer:
    program = nnc.parse(spec)
    run = resolve_run(program, None)
    data = prepare(program, run.recipe)
    metrics = Metrics(run.recipe.metrics, data.task)
    monitor = monitor_of(run.recipe, metrics, data.validation is not None)
    plan, identity = make_plan(run, monitor, None, 3, "fake", group.size if group else 1)
    chief = group is None or group.chief
    return Trainer(
        runtime,
        data,
        plan,
        metrics,
        identity,
        run_dir=RunDir(run_dir) if run_dir is not None and chief else None,
        should_stop=should_stop,
        group=group,
    )


def run_workers(spec: str, size: int, **options: object) -> list[TrainResult]:
    program = nnc.parse(spec)
    recipe = next(iter(program.recipes.values()))
    assert isinstance(recipe, Recipe)
    weights = init_weights(program, program.models[recipe.model], recipe.seed)
    exchange = Exchange(size)
    results: list[TrainResult | BaseException] = [RuntimeError("did not finish")] * size

    def work(rank: int) -> None:
        stop = options.get("stop_at", {}).get(rank)  # type: ignore[attr-defined]
        calls = iter(range(1, 10**6))
        runtime = ThreadWorker(weights, recipe, rank, exchange)
        try:
            results[rank] = trainer(
                spec,
                runtime,
                DataParallel(runtime, "threads"),
                options.get("run_dir"),  # type: ignore[arg-type]
                (lambda: next(calls) >= stop) if stop else (lambda: False),
            ).run()
        except BaseException as exc:  # reported below, with the rank
            results[rank] = exc

    threads = [threading.Thread(target=work, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for rank, result in enumerate(results):
        if isinstance(result, BaseException):
            raise AssertionError(f"worker {rank} failed: {result!r}") from result
    return results  # type: ignore[return-value]


def single(spec: str) -> TrainResult:
    program = nnc.parse(spec)
    recipe = next(iter(program.recipes.values()))
    assert isinstance(recipe, Recipe)
    weights = init_weights(program, program.models[recipe.model], recipe.seed)
    return trainer(spec, FakeRuntime(weights, recipe), None).run()


def deviation(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """The largest difference, relative to the weights' scale (at least 1)."""
    return max(float(np.max(np.abs(a[k] - b[k])) / max(1.0, np.max(np.abs(b[k])))) for k in a)


IRIS = {"data": "iris", "features": 4, "units": 3}
HOUSES = {"data": "houses", "features": 6, "units": 1}


@pytest.mark.parametrize(
    ("data", "loss", "lr", "batch", "size", "metrics"),
    [
        # 120 samples, batch 13: slices of 5/4/4 samples, and 1/1/1 in the last batch
        (IRIS, "cross_entropy", 0.1, 13, 3, "accuracy, top_k(2)"),
        # the last batch of 3 leaves the fourth worker an empty slice
        (IRIS, "cross_entropy", 0.1, 13, 4, "accuracy"),
        # a summed loss (every share is 1); 400 samples, the last batch of 1 leaves
        # three workers empty slices
        (HOUSES, "sse", 0.0005, 19, 4, "mae"),
        (HOUSES, "mse", 0.05, "all", 2, "mse"),
    ],
)
def test_workers_make_the_updates_of_one_process(
    data: dict[str, object], loss: str, lr: float, batch: object, size: int, metrics: str
) -> None:
    spec = SPEC.format(loss=loss, lr=lr, batch=batch, metrics=metrics, **data)
    alone = single(spec)
    workers = run_workers(spec, size)
    for rank, result in enumerate(workers):
        gap = deviation(result.runtime.get_weights(), alone.runtime.get_weights())
        assert gap < 1e-5, f"rank {rank}: max relative |weights - one process| = {gap}"
        assert result.stopped == "completed"
        for row, expected in zip(result.history, alone.history, strict=True):
            for name, value in expected.items():
                if name != "time":
                    assert row[name] == pytest.approx(value, rel=1e-5, abs=1e-7), (rank, name)
        for name, value in alone.final.items():
            assert result.final[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
        assert np.array_equal(result.confusion, alone.confusion)  # type: ignore[arg-type]


def test_a_stop_request_on_one_worker_stops_all_at_the_same_batch(tmp_path: Path) -> None:
    spec = SPEC.format(loss="cross_entropy", lr=0.1, batch=16, metrics="accuracy", **IRIS)
    # rank 1 alone is asked to stop, at its 12th batch (the 4th of epoch 2)
    results = run_workers(spec, 2, stop_at={1: 12}, run_dir=tmp_path / "run")
    assert [r.stopped for r in results] == ["interrupted", "interrupted"]
    assert deviation(results[0].runtime.get_weights(), results[1].runtime.get_weights()) == 0.0
    names = [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert names == ["epoch-000001.safetensors", "epoch-000001-batch-000004.safetensors"]
    checkpoint = read_checkpoint(tmp_path / "run" / "checkpoints" / names[-1])
    assert (checkpoint.state.epoch, checkpoint.state.batch, checkpoint.workers) == (1, 4, 2)
    assert results[1].run_dir is None  # rank 1 writes nothing


def test_broadcast_sends_rank_0_bytes_to_every_worker() -> None:
    payload = np.random.default_rng(0).integers(0, 256, 1001, dtype=np.uint8).tobytes()
    exchange = Exchange(3)
    received: list[bytes] = [b""] * 3

    class Node:
        def __init__(self, rank: int):
            self.rank, self.world_size = rank, 3

        def all_reduce(self, values: np.ndarray) -> np.ndarray:
            return exchange.sum(self.rank, values)

    def work(rank: int) -> None:
        group = DataParallel(Node(rank))  # type: ignore[arg-type]
        received[rank] = group.broadcast(payload if rank == 0 else None)

    threads = [threading.Thread(target=work, args=(r,)) for r in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert received == [payload] * 3


def test_slices_and_shares() -> None:
    index = np.arange(10, 15)
    assert [shard(index, r, 3).tolist() for r in range(3)] == [[10, 11], [12, 13], [14]]
    assert shard(np.arange(1), 1, 2).tolist() == []
    assert share(2, 5, summed=False) == 0.4 and share(2, 5, summed=True) == 1.0


def test_empty_slices_are_refused_where_the_backend_cannot_train_them() -> None:
    check_no_empty_slices(1797, 450, 2, "tensorflow")  # last batch 447: 224 and 223
    with pytest.raises(TrainingError) as err:
        check_no_empty_slices(1797, 449, 2, "tensorflow")
    assert err.value.message.startswith(
        "the last global batch has 1 sample, fewer than the 2 workers, and tensorflow cannot"
    )
    assert err.value.hint == "use --batch 448 or --backend torch, which trains empty slices"
    with pytest.raises(TrainingError, match="every global batch has 1 sample"):
        check_no_empty_slices(10, 1, 2, "tensorflow")
