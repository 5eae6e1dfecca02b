"""The TensorFlow program of seed article 000 ("TensorFlow vs PyTorch"), verbatim but
for its import line. Run by tests/test_keras_seeds.py, which supplies the data it assumes."""

import tracegraph as tf  # the one changed line: was `import tensorflow as tf`

# 定义模型参数
w = tf.Variable(tf.random.normal([1]), name='weight')
b = tf.Variable(tf.zeros([1]), name='bias')

# 定义模型
def linear_model(x):
    return w * x + b

# 定义损失函数
def loss(y_pred, y_true):
    return tf.reduce_mean(tf.square(y_pred - y_true))

# 定义优化器
optimizer = tf.optimizers.SGD(0.01)

# 训练模型
for i in range(1000):
    with tf.GradientTape() as tape:
        y_pred = linear_model(x)
        loss_value = loss(y_pred, y)
    gradients = tape.gradient(loss_value, [w, b])
    optimizer.apply_gradients(zip(gradients, [w, b]))
