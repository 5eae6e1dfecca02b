"""The TensorFlow program of seed article 003 ("TensorFlow vs PyTorch"), verbatim but
for its import line. Run by tests/test_keras_seeds.py, which supplies the data it assumes."""

import tracegraph as tf  # the one changed line: was `import tensorflow as tf`

# 定义模型
model = tf.keras.models.Sequential([
  tf.keras.layers.Dense(10, activation='relu', input_shape=(4,)),
  tf.keras.layers.Dense(1)
])

# 编译模型
model.compile(optimizer='adam', loss='mse')

# 训练模型
model.fit(x_train, y_train, epochs=10)

# 评估模型
loss, accuracy = model.evaluate(x_test, y_test)
