"""Data-parallel training on the frameworks' own engines (``nnc train --nproc N``).

torch workers start through torchrun and train with ``DistributedDataParallel``
(gloo on the CPU, nccl on CUDA); TensorFlow workers start under nnc's supervisor and
train under a ``MultiWorkerMirroredStrategy``. Every worker runs nnc's training
driver on the same global batch order as single-process training, on its slice of
each global batch. See ``docs/distributed.md``.

- :mod:`.settings`: how many workers where (:class:`Launch`), and its checks;
- :mod:`.launch`: the launching side; :mod:`.torchrun`, :mod:`.supervisor`: starting
  and watching the workers; :mod:`.failures`: one clear error naming the failed rank;
- :mod:`.worker`: a worker process; :mod:`.engines`: joining the others per framework;
- :mod:`.group`: the driver's view of the workers (slices, shares, collectives);
- :mod:`.job`: the files the launcher and the workers exchange.
"""
