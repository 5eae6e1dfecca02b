"""The PyTorch program of seed article 003 ("TensorFlow vs PyTorch"), verbatim but
for its import line. Run by tests/test_seed_twins.py, which supplies the data it assumes
(``x_train``, ``y_train``, ``x_test``, ``y_test``, as for tf_003_regression.py)."""

import tracegraph as torch  # the one changed line: was `import torch`

# 定义模型
class Net(torch.nn.Module):
  def __init__(self):
    super(Net, self).__init__()
    self.fc1 = torch.nn.Linear(4, 10)
    self.fc2 = torch.nn.Linear(10, 1)

  def forward(self, x):
    x = torch.relu(self.fc1(x))
    x = self.fc2(x)
    return x

model = Net()

# 定义优化器和损失函数
optimizer = torch.optim.Adam(model.parameters())
loss_fn = torch.nn.MSELoss()

# 训练模型
for epoch in range(10):
  # 前向传播
  y_pred = model(x_train)

  # 计算损失
  loss = loss_fn(y_pred, y_train)

  # 反向传播
  optimizer.zero_grad()
  loss.backward()

  # 更新参数
  optimizer.step()

# 评估模型
with torch.no_grad():
  y_pred = model(x_test)
  loss = loss_fn(y_pred, y_test)
  accuracy = (y_pred.argmax(dim=1) == y_test).float().mean()
