"""The PyTorch program of seed article 004 ("TensorFlow vs PyTorch"), verbatim but
for its import lines. As written it uses ``F`` (``torch.nn.functional``) without
importing it and stops before training (``# ...``): tests/test_seed_twins.py supplies
``F = tracegraph.nn.functional`` and drives the model on the digits."""

import tracegraph as torch  # the changed lines: were `import torch`,
import tracegraph.nn as nn  # `import torch.nn as nn`
import tracegraph.optim as optim  # and `import torch.optim as optim`

# 定义CNN模型
class CNN(nn.Module):
    def __init__(self):
        super(CNN, self).__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = x.view(-1, 64 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return x

# 训练模型
model = CNN()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(model.parameters(), lr=0.01)

# 评估模型
# ...
