"""examples/digits_cnn.nn written by hand in idiomatic PyTorch: the yardstick for the
length of nnc's generated torch module (issue 18: at most twice this file's length).

The same network, loss, optimizer and training loop as the generated module's
``DigitsCNN``, ``compute_loss``, ``make_optimizer`` and ``fit``, without nnc's
docstrings. Not a test; ``python benchmarks/reference_digits_cnn.py`` trains it on
random data for one epoch.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3)
        self.fc1 = nn.Linear(128, 64)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = F.relu(self.conv2(x)).flatten(1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def fit(x, y, epochs=20, batch=32, seed=0, verbose=True):
    torch.manual_seed(seed)
    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for index in torch.from_numpy(rng.permutation(len(x))).split(batch):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        history.append(total / len(x))
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}: loss {history[-1]:.6f}")
    return model, history


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 1, 8, 8)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]
    fit(x, y, epochs=1)
