"""Window arithmetic shared by convolution and pooling ops: attribute checks, output
sizes, and the explicit patch extraction their float64 numpy references use."""

from __future__ import annotations

import numpy as np

from .defop import ShapeError

def check_pairs(name, value, n=2):
    if len(value) != n:
        raise ShapeError(f"{name} needs {n} entries, got {value}")


def check_padding(padding):
    check_pairs("padding", padding)
    for p in padding:
        if len(p) != 2:
            raise ShapeError(f"padding needs (low, high) pairs, got {padding}")
        if min(p) < 0:
            raise ShapeError(f"padding must be >= 0, got {padding}")


def window_out(size, pad, window, stride, dilation=1, what="kernel"):
    extent = dilation * (window - 1) + 1
    padded = size + pad[0] + pad[1]
    if padded < extent:
        raise ShapeError(f"the {what} (extent {extent}) is larger than the padded input ({padded})")
    return (padded - extent) // stride + 1


def patches(a, window, stride, padding, dilation=(1, 1), fill=0.0):
    """(N, C, H, W) -> (N, C, kh, kw, Ho, Wo): every window position, by explicit slicing."""
    a = np.pad(a, ((0, 0), (0, 0), tuple(padding[0]), tuple(padding[1])), constant_values=fill)
    (kh, kw), (sh, sw), (dh, dw) = window, stride, dilation
    ho = (a.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (a.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.empty(a.shape[:2] + (kh, kw, ho, wo), a.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i, j] = a[
                :,
                :,
                i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                j * dw : j * dw + sw * (wo - 1) + 1 : sw,
            ]
    return out
