"""``tg.optimizers``: Keras 3's optimizers (``tf.optimizers`` / ``keras.optimizers``),
for TF 2 and Keras code: ``optimizer.apply_gradients(zip(grads, variables))``.

See `tracegraph.optim._keras` for the classes; this module only gives them their public
home. They update `tg.Variable`s (or imperative tensors) in place with Keras 3's
defaults and arithmetic, one ``jax.jit`` call per step; ``opt.transformation()`` is the
same update as a functional `tg.optim` optimizer, and ``FromTransform(tx)`` is the other
way: any functional optimizer with ``apply_gradients``. The PyTorch-style optimizers
(``zero_grad``/``step`` on ``.grad``) are ``tg.optim.SGD`` ... instead.

Example::

    import tracegraph as tf
    w = tf.Variable(tf.random.normal([1]), name="weight")
    b = tf.Variable(tf.zeros([1]), name="bias")
    optimizer = tf.optimizers.SGD(0.01)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(w * x + b - y))
    gradients = tape.gradient(loss, [w, b])
    optimizer.apply_gradients(zip(gradients, [w, b]))
"""

from .optim._keras import SGD, Adagrad, Adam, AdamW, FromTransform, Optimizer, RMSprop

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "FromTransform", "Optimizer", "RMSprop"]
