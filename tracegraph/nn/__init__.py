"""Layer 7: the model library.

`Module` (an immutable pytree of parameters; `field(static=...)` overrides how a field
is classified, see ``_module/README.md``) and the layers built on it; the stateless
functions (activations, losses, convolution, pooling, dropout, normalization) are in
``tg.nn.functional``, the initializers in ``tg.nn.init``. ``tg.nn.relu``,
``tg.nn.softmax``, ``tg.nn.sparse_softmax_cross_entropy_with_logits`` ... are ``tf.nn``'s
functions with TensorFlow's argument names (``_tf.py``).

Example::

    key = tg.random.key(0)
    k1, k2 = tg.random.split(key)
    model = tg.nn.Sequential([tg.nn.Linear(784, 128, key=k1), tg.relu,
                              tg.nn.Linear(128, 10, key=k2)])
    logits = tg.jit(lambda m, x: m(x))(model, x)
"""

from . import functional, init
from ._activation import GELU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from ._attention import MultiHeadAttention
from ._conv import (
    AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, Conv3d, ConvTranspose2d, MaxPool1d, MaxPool2d,
)
from ._dropout import Dropout
from ._linear import Embedding, Flatten, Identity, Linear
from ._loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, Parameter
from ._norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm
from ._recurrent import GRU, LSTM, GRUCell, LSTMCell
from ._sequential import Sequential
from ._transformer import TransformerEncoderLayer
from ._with_state import call_with_state
from ._summary import summary
from ._module import Module, field, tree_at
from . import parallel  # data and tensor parallelism on a device mesh (tg.nn.parallel)
from ._tf import (
    gelu, l2_loss, leaky_relu, log_softmax, relu, sigmoid, sigmoid_cross_entropy_with_logits, silu,
    softmax, softmax_cross_entropy_with_logits, softplus, sparse_softmax_cross_entropy_with_logits,
    swish, tanh,
)

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "L1Loss",
    "MSELoss",
    "NLLLoss",
    "Parameter",
    "GELU",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "GroupNorm",
    "Identity",
    "LayerNorm",
    "Linear",
    "LogSoftmax",
    "MaxPool1d",
    "MaxPool2d",
    "Module",
    "MultiHeadAttention",
    "ReLU",
    "RMSNorm",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TransformerEncoderLayer",
    "call_with_state",
    "field",
    "functional",
    "init",
    "parallel",
    "summary",
    "tree_at",
    # tf.nn's functions, TF's argument names (``_tf.py``)
    "gelu", "l2_loss", "leaky_relu", "log_softmax", "relu", "sigmoid",
    "sigmoid_cross_entropy_with_logits", "silu", "softmax", "softmax_cross_entropy_with_logits",
    "softplus", "sparse_softmax_cross_entropy_with_logits", "swish", "tanh",
]


def _public_forwards() -> None:
    """A mistake in calling a layer names the layer (``Linear``) and the user's line."""
    from ..errors import public

    for name in __all__:
        cls = globals().get(name)
        if isinstance(cls, type) and issubclass(cls, Module) and "forward" in vars(cls):
            forward = vars(cls)["forward"]
            if not hasattr(forward, "_tg_public"):
                cls.forward = public(name)(forward)


_public_forwards()
