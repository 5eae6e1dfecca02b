"""The TensorFlow program of seed article 001 ("TensorFlow vs PyTorch"), verbatim but
for its import line. Run by tests/test_keras_seeds.py, which supplies the data it assumes."""

import tracegraph as tf  # the one changed line: was `import tensorflow as tf`

# 数据集
X = [[1, 2], [3, 4]]
Y = [5, 6]

# 创建一个线性模型
model = tf.keras.models.Sequential([
    tf.keras.layers.Dense(1, input_shape=(2,))
])

# 编译模型
model.compile(optimizer='adam', loss='mean_squared_error')

# 训练模型
model.fit(X, Y, epochs=100)
