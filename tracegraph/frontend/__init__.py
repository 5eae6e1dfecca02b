"""Layer 3: the front end. `Tensor`, builders (tracing and define-by-run), the tg.*
function namespace, and entry points that turn Python functions into graphs."""
