"""Layer 3: the op library. Importing this package registers every op in the IR's
table; each op is one `defop` block holding all of its facets."""

from . import elementwise  # noqa: F401
from . import creation, reductions, scatter, shape  # noqa: F401
from . import conv, linalg, nn, pooling, random  # noqa: F401
from . import control, custom_vjp, guard  # noqa: F401
from . import jax_compat  # noqa: F401
from . import cumulative, special  # noqa: F401
from . import collectives, sharding  # noqa: F401
