"""The TensorFlow program of seed article 004 ("TensorFlow vs PyTorch"), verbatim but
for its import line. Run by tests/test_keras_seeds.py, which supplies the data it assumes."""

import tracegraph as tf  # the one changed line: was `import tensorflow as tf`

# 定义CNN模型
class CNN(tf.keras.Model):
    def __init__(self):
        super(CNN, self).__init__()
        self.conv1 = tf.keras.layers.Conv2D(64, 3, padding='same')
        self.pool = tf.keras.layers.MaxPooling2D(2, 2)
        self.fc1 = tf.keras.layers.Dense(128, activation='relu')
        self.fc2 = tf.keras.layers.Dense(10, activation='softmax')

    def call(self, x):
        x = self.pool(tf.keras.activations.relu(self.conv1(x)))
        x = tf.reshape(x, (-1, 64 * 5 * 5))
        x = self.fc1(x)
        x = self.fc2(x)
        return x

# 训练模型
# ...

# 评估模型
# ...
