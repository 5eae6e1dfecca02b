"""Layer 4: the front end (see README.md here). The numpy-named tg.* functions and the
`Tensor` methods, tracing of argument pytrees into graphs (`trace_with`), structured
control flow, and define-by-run (`EagerTrace`, `tg.eager`). Every function here applies
ops through `core.bind`; the mode is the trace on top of the stack, never a flag."""
