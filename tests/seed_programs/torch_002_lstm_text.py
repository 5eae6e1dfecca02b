"""The PyTorch program of seed article 002 ("TensorFlow vs PyTorch"), verbatim but
for its import lines. The article gives only the model class (its training and
generation are ``# ...``); tests/test_seed_twins.py drives it on a tiny character
corpus."""

import tracegraph as torch  # the changed lines: were `import torch`
import tracegraph.nn as nn  # and `import torch.nn as nn`

# 定义模型
class LSTM(nn.Module):
  def __init__(self, input_size, hidden_size, output_size):
    super(LSTM, self).__init__()
    self.lstm = nn.LSTM(input_size, hidden_size)
    self.linear = nn.Linear(hidden_size, output_size)

  def forward(self, x, hidden):
    output, hidden = self.lstm(x, hidden)
    output = self.linear(output)
    return output, hidden

# 训练模型
# ...

# 生成文本
# ...
