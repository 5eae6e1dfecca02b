"""``tf.keras.datasets``: Keras' built-in data sets, read from the files Keras itself
downloaded, never downloaded here.

Each submodule has Keras 3's ``load_data`` (same arguments, same arrays, dtypes and
shapes) and reads Keras' cache folder: ``$KERAS_HOME/datasets/`` when ``KERAS_HOME`` is
set, else ``~/.keras/datasets/``. A missing file raises one `tg.data.DataError` saying
which file to put into which folder; a damaged one raises a `DataError` naming it.
Nothing from a file is ever executed: ``.npz`` arrays are read with pickling off (IMDB's
ragged lists, and CIFAR's pickled batches, through a restricted unpickler that allows
numpy's array reconstruction only), and declared sizes are checked against the file
before anything is allocated.

- `mnist`, `fashion_mnist` — 28x28 uint8 images, uint8 labels.
- `cifar10`, `cifar100` — 32x32x3 uint8 images (channels last), labels ``[N, 1]``.
- `boston_housing` — 13 features, a price; shuffled and split as Keras does.
- `imdb` — reviews as lists of word indices; `imdb.get_word_index`.

Example::

    import tracegraph as tf
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
"""

from . import boston_housing, cifar10, cifar100, fashion_mnist, imdb, mnist

__all__ = ["boston_housing", "cifar10", "cifar100", "fashion_mnist", "imdb", "mnist"]
