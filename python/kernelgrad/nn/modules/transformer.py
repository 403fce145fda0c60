"""Attention layers: MultiheadAttention, Transformer encoder/decoder layers and stacks, and a
sinusoidal positional encoding.

Shapes follow PyTorch: (L, N, E) by default, (N, L, E) with batch_first=True, (L, E) unbatched.
Masks follow nn.MultiheadAttention's convention: a bool attn_mask / key_padding_mask marks with
True the positions that may NOT be attended; a float mask is added to the scores. Without
need_weights the layer runs on the fused attention kernel (F.scaled_dot_product_attention);
with need_weights it forms the weights explicitly, as PyTorch does, to return them.
"""
import copy
import math

from ..._dtype import float32
from ..._errors import DTypeError, ShapeError
from ...creation import arange, empty, zeros
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm


def generate_square_subsequent_mask(sz, device=None, dtype=None):
    """(sz, sz) float mask: 0 on and below the diagonal, -inf above (a causal mask)."""
    mask = zeros((sz, sz), device=device, dtype=dtype)
    return mask.masked_fill(arange(sz, device=device).unsqueeze(1) < arange(sz, device=device), float("-inf"))


def _additive(mask, dtype, what):
    """A bool mask (True = not allowed) as 0 / -inf; a float mask as it is."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{what}: expected a Tensor or None, got {type(mask).__name__}")
    if mask.dtype.name == "bool":
        return zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    if not mask.dtype.is_floating_point:
        raise DTypeError(f"{what}: only bool and floating types of masks are supported, got {mask.dtype.name}")
    return mask.to(dtype=dtype)


class MultiheadAttention(Module):
    """Multi-head attention: out = concat_h(softmax(Q_h K_h^T / sqrt(d) + mask) V_h) W_o^T + b_o,
    with Q = query W_q^T + b_q, K = key W_k^T + b_k, V = value W_v^T + b_v and d = embed_dim / num_heads."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                             f"and num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are not supported")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        kw = dict(device=device, dtype=dtype)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty((3 * embed_dim, embed_dim), **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty((embed_dim, embed_dim), **kw))
            self.k_proj_weight = Parameter(empty((embed_dim, self.kdim), **kw))
            self.v_proj_weight = Parameter(empty((embed_dim, self.vdim), **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def _project(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one GEMM for Q, K and V
                return F.linear(query, w, b).chunk(3, -1)
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"MultiheadAttention: expected {name} to be a Tensor, got {type(t).__name__}")
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(
                f"MultiheadAttention: query, key and value must all be 2-D (unbatched) or 3-D (batched), got "
                f"{query.ndim}-D, {key.ndim}-D and {value.ndim}-D"
            )
        if self.batch_first and batched:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value)) if not (query is key is value) \
                else (query.transpose(0, 1),) * 3
        if not batched:
            query, key, value = (x.unsqueeze(1) for x in (query, key, value)) if not (query is key is value) \
                else (query.unsqueeze(1),) * 3
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        L, N, E = query.shape
        S = key.shape[0]
        if E != self.embed_dim:
            raise ShapeError(f"MultiheadAttention: was expecting embedding dimension of {self.embed_dim}, but got {E}")
        if key.shape[:2] != value.shape[:2] or key.shape[1] != N:
            raise ShapeError(
                f"MultiheadAttention: key shape {list(key.shape)} does not match value shape {list(value.shape)} "
                f"or the batch size {N} of the query"
            )
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
                "`generate_square_subsequent_mask` to create this mask."
            )

        # (L, N, E) -> (N, H, L, d)
        q, k, v = self._project(query, key, value)
        H, d = self.num_heads, self.head_dim
        q = q.reshape(L, N, H, d).permute(1, 2, 0, 3)
        k = k.reshape(S, N, H, d).permute(1, 2, 0, 3)
        v = v.reshape(S, N, H, d).permute(1, 2, 0, 3)

        # one additive mask, broadcastable to (N, H, L, S)
        mask = _additive(attn_mask, q.dtype, "attn_mask")
        if mask is not None:
            if mask.shape == (L, S):
                pass
            elif mask.shape == (N * H, L, S):
                mask = mask.reshape(N, H, L, S)
            else:
                raise ShapeError(
                    f"MultiheadAttention: attn_mask should have shape ({L}, {S}) or ({N * H}, {L}, {S}), "
                    f"got {list(attn_mask.shape)}"
                )
        pad = _additive(key_padding_mask, q.dtype, "key_padding_mask")
        if pad is not None:
            if pad.shape != (N, S):
                raise ShapeError(
                    f"MultiheadAttention: expected key_padding_mask of shape ({N}, {S}), got {list(key_padding_mask.shape)}"
                )
            pad = pad.reshape(N, 1, 1, S)
            mask = pad if mask is None else mask + pad
        p = self.dropout if self.training else 0.0

        if need_weights:
            scores = (q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1)  # (N, H, L, S)
            if mask is not None:
                scores = scores + mask
            weights = F.softmax(scores, dim=-1)
            out = F.dropout(weights, p) @ v if p > 0 else weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            weights = None

        out = out.permute(2, 0, 1, 3).reshape(L, N, E)  # (N, H, L, d) -> (L, N, E)
        out = self.out_proj(out)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
        if weights is not None:
            if average_attn_weights:
                weights = weights.mean(dim=1)
            if not batched:
                weights = weights.squeeze(0)
        return out, weights


def _activation(activation):
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection and LayerNorm:
    post-LN  x = norm1(x + SA(x)); x = norm2(x + FF(x))      (norm_first=False, the default)
    pre-LN   x = x + SA(norm1(x)); x = x + FF(norm2(x))      (norm_first=True)
    with FF(x) = linear2(dropout(activation(linear1(x))))."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention over `memory`, then a feed-forward block; each with a residual
    connection and LayerNorm (post-LN by default, pre-LN with norm_first=True)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                 **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """`num_layers` copies of `encoder_layer` applied in turn, then an optional final norm."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """`num_layers` copies of `decoder_layer` applied in turn, then an optional final norm."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class PositionalEncoding(Module):
    """Adds the sinusoidal encoding of "Attention Is All You Need" to (L, N, d) input ((N, L, d) with
    batch_first):  PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""

    def __init__(self, d_model, max_len=5000, dropout=0.0, batch_first=False):
        super().__init__()
        pos = arange(max_len, dtype=float32).unsqueeze(1)                   # (max_len, 1)
        freq = (arange(0, d_model, 2, dtype=float32) * (-math.log(10000.0) / d_model)).exp()  # (ceil(d/2),)
        pe = zeros(max_len, d_model)
        pe[:, 0::2] = (pos * freq).sin()
        pe[:, 1::2] = (pos * freq[: d_model // 2]).cos()
        self.register_buffer("pe", pe, persistent=False)
        self.dropout = Dropout(dropout)
        self.batch_first = batch_first

    def forward(self, x):
        L = x.shape[1] if self.batch_first else x.shape[0]
        if L > self.pe.shape[0]:
            raise ShapeError(f"PositionalEncoding: sequence length {L} exceeds max_len {self.pe.shape[0]}")
        pe = self.pe[:L].to(dtype=x.dtype)
        return self.dropout(x + (pe.unsqueeze(0) if self.batch_first else pe.unsqueeze(1)))

    def extra_repr(self):
        return f"d_model={self.pe.shape[1]}, max_len={self.pe.shape[0]}, batch_first={self.batch_first}"
