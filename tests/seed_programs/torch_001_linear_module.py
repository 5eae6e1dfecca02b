"""The PyTorch program of seed article 001 ("TensorFlow vs PyTorch"), verbatim but
for its import lines. Run by tests/test_seed_twins.py; it makes its own data."""

import tracegraph as torch  # the changed lines: were `import torch`
import tracegraph.nn as nn  # and `import torch.nn as nn`

# 数据集
X = torch.tensor([[1, 2]], dtype=torch.float)
Y = torch.tensor([5], dtype=torch.float)

# 定义一个线性模型
class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.fc1 = nn.Linear(2, 1)

    def forward(self, x):
        return self.fc1(x)

net = Net()

# 定义损失函数和优化器
criterion = nn.MSELoss()
optimizer = torch.optim.SGD(net.parameters(), lr=0.01)

# 训练模型
for epoch in range(100):
    optimizer.zero_grad()
    outputs = net(X)
    loss = criterion(outputs, Y)
    loss.backward()
    optimizer.step()
