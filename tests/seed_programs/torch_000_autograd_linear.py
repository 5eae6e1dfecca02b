"""The PyTorch program of seed article 000 ("TensorFlow vs PyTorch"), verbatim but
for its import line. Run by tests/test_seed_twins.py, which supplies the data it assumes
(``x`` and ``y``, as for tf_000_variables_tape.py)."""

import tracegraph as torch  # the one changed line: was `import torch`

# 定义模型参数
w = torch.randn(1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)

# 定义模型
def linear_model(x):
    return w * x + b

# 定义损失函数
def loss(y_pred, y_true):
    return ((y_pred - y_true) ** 2).mean()

# 训练模型
for i in range(1000):
    y_pred = linear_model(x)
    loss_value = loss(y_pred, y)
    loss_value.backward()
    with torch.no_grad():
        w -= 0.01 * w.grad
        b -= 0.01 * b.grad
    w.grad.zero_()
    b.grad.zero_()
