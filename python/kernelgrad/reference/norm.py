"""Layer norm and batch norm, as torch.nn.functional defines them.

Layer norm normalises each sample over its last len(normalized_shape) dims:
    mean = x.mean(those dims),  var = ((x - mean)^2).mean(those dims)   (biased)
    xhat = (x - mean) / sqrt(var + eps),   y = xhat * weight + bias     (weight, bias: normalized_shape)
Backward, with g = dy * weight and means over the normalized dims:
    dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)
    dweight = sum of dy * xhat over the other dims,  dbias = sum of dy over the other dims

Batch norm normalises each channel (dim 1 of (N, C) or (N, C, d1, ...)) over all its other dims:
    training: mean and biased var of the batch; the running statistics (when given) move towards
              the batch's: running = (1 - momentum) running + momentum batch, with the unbiased
              var (M / (M - 1), M values per channel) going into running_var.
    eval:     mean and var are running_mean and running_var.
    y = (x - mean) / sqrt(var + eps) * weight + bias                    (weight, bias: (C,))
Backward, xhat as above, sums over the M values of a channel:
    dweight = sum(dy * xhat),  dbias = sum(dy)
    training: dx = weight / sqrt(var + eps) * (dy - dbias / M - xhat * dweight / M)
              (the batch statistics depend on x: their gradient is the two subtracted terms)
    eval:     dx = weight / sqrt(var + eps) * dy
"""
import numpy as np


def _layer_dims(x, normalized_shape):
    k = len(normalized_shape)
    return tuple(range(x.ndim - k, x.ndim))


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = _layer_dims(x, normalized_shape)
    mean = np.mean(x, axis=dims, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=dims, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def layer_norm_backward(dy, x, normalized_shape, weight=None, eps=1e-5):
    """(dx, dweight, dbias) for y = layer_norm(x, normalized_shape, weight, bias, eps)."""
    dims = _layer_dims(x, normalized_shape)
    other = tuple(range(x.ndim - len(dims)))
    mean = np.mean(x, axis=dims, keepdims=True)
    rstd = 1 / np.sqrt(np.mean((x - mean) ** 2, axis=dims, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    g = dy * weight if weight is not None else dy
    dx = rstd * (g - np.mean(g, axis=dims, keepdims=True) - xhat * np.mean(g * xhat, axis=dims, keepdims=True))
    return dx, np.sum(dy * xhat, axis=other), np.sum(dy, axis=other)


def _channel(v, ndim):
    """(C,) shaped to broadcast along dim 1 of an (N, C, d1, ...) array."""
    return np.reshape(v, (1, -1) + (1,) * (ndim - 2))


def _batch_stats(x):
    dims = (0,) + tuple(range(2, x.ndim))
    return np.mean(x, axis=dims), np.var(x, axis=dims), x.size // x.shape[1]


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """y; in training, running_mean and running_var (when given) are updated in place."""
    if training:
        mean, var, M = _batch_stats(x)
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
            running_var[...] = (1 - momentum) * running_var + momentum * var * M / (M - 1)
    else:
        mean, var = running_mean, running_var
    y = (x - _channel(mean, x.ndim)) / np.sqrt(_channel(var, x.ndim) + eps)
    if weight is not None:
        y = y * _channel(weight, x.ndim)
    if bias is not None:
        y = y + _channel(bias, x.ndim)
    return y


def batch_norm_backward(dy, x, running_mean=None, running_var=None, weight=None, training=False, eps=1e-5):
    """(dx, dweight, dbias) for y = batch_norm(x, running_mean, running_var, weight, bias, training, ...)."""
    dims = (0,) + tuple(range(2, x.ndim))
    if training:
        mean, var, M = _batch_stats(x)
    else:
        mean, var = running_mean, running_var
    rstd = _channel(1 / np.sqrt(var + eps), x.ndim)
    xhat = (x - _channel(mean, x.ndim)) * rstd
    dweight, dbias = np.sum(dy * xhat, axis=dims), np.sum(dy, axis=dims)
    scale = rstd * (_channel(weight, x.ndim) if weight is not None else 1)
    if training:
        dx = scale * (dy - _channel(dbias, x.ndim) / M - xhat * _channel(dweight, x.ndim) / M)
    else:
        dx = scale * dy
    return dx, dweight, dbias
