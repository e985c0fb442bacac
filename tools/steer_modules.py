"""TorchScript-ready transformer modules that steer exports.

Each family keeps the Hugging Face module names and parameter shapes, so a Hugging Face
state_dict loads unchanged and every block, attention and MLP stays a separate submodule
(steer's hook layer instruments them by path). Every top-level module has two methods:

    forward(input_ids, attention_mask) -> logits
        Full recompute. input_ids [B, T] int64, attention_mask [B, T] (1 = token, 0 = left pad).

    forward_cached(input_ids, attention_mask, k_cache, v_cache, past_length: int) -> logits
        input_ids [B, t] are the tokens at positions past_length .. past_length+t-1;
        attention_mask [B, past_length+t] covers the cached and the new tokens;
        k_cache, v_cache [n_layers, B, n_kv_heads, max_length, head_dim] are written in place
        at those positions. Prefill is a call with past_length = 0, a decode step one with t = 1.

Positions come from the mask (cumsum - 1), so left padding never shifts a sequence's positions.

The code also traces (tools/export_model.py --trace traces `forward`): dtypes and devices are
taken from tensors (`type_as`, `new_*`, `ones_like`), never from Python values, which a trace
would bake in as constants; shapes come from `size()`, which a trace records.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def position_ids_from_mask(attention_mask: torch.Tensor, t: int) -> torch.Tensor:
    """Position of each of the last t columns: the count of real tokens before it."""
    positions = attention_mask.long().cumsum(-1) - 1
    positions = positions.clamp(min=0)
    return positions[:, positions.size(1) - t:]


def additive_mask(attention_mask: torch.Tensor, t: int, like: torch.Tensor,
                  window: int = 0) -> torch.Tensor:
    """[B, 1, t, S] additive mask in the dtype of `like`: 0 where query i (at S - t + i) may
    attend key j, else the dtype's lowest finite value. window > 0: only the last `window`
    positions up to the query's own (a sliding window; columns stand for positions, since left
    padding keeps each sequence's real tokens contiguous).

    A fully masked row (a left-pad query) stays finite, so its softmax does too; those rows are
    never read.
    """
    total = attention_mask.size(1)
    column = torch.ones_like(attention_mask[0]).cumsum(0) - 1  # 0 .. total-1, on the mask's device
    query = column[total - t:].view(t, 1)
    key = column.view(1, total)
    causal = key <= query
    if window > 0:
        causal = causal & (query - key < window)
    allowed = causal.view(1, 1, t, total) & (attention_mask != 0).view(-1, 1, 1, total)
    zero = like.new_zeros(())
    minimum = like.new_full((), float("-inf")).nan_to_num()  # the lowest finite value
    return torch.where(allowed, zero, minimum)


def activation(x: torch.Tensor, name: str) -> torch.Tensor:
    """A Hugging Face activation by name: the tanh GELUs, the exact GELU, else ReLU."""
    if name == "gelu_new" or name == "gelu_pytorch_tanh" or name == "gelu_fast":
        return F.gelu(x, approximate="tanh")
    if name == "gelu":
        return F.gelu(x)
    return F.relu(x)


def write_cache(cache: torch.Tensor, new: torch.Tensor, past_length: int) -> torch.Tensor:
    """Writes new [B, H, t, D] into cache [B, H, max, D] at past_length; returns the filled prefix."""
    end = past_length + new.size(2)
    cache[:, :, past_length:end] = new
    return cache[:, :, :end]


# ----------------------------------------------------------------------------- decoder family
# One module for the Llama-style decoders (Llama, Mistral, Qwen2, Qwen3, Gemma 1/2/3): RMSNorm,
# rotary positions, grouped-query attention, gated MLP. cfg switches the differences on
# (tools/architectures.py translates each Hugging Face config):
#   qkv_bias, out_bias, mlp_bias   biases of the projections (Qwen2: q/k/v)
#   activation                     "silu" or "gelu_tanh" (Gemma)
#   norm_offset                    0.0: w * x_hat (Llama); 1.0: (1 + w) * x_hat in float32 (Gemma)
#   qk_norm                        RMSNorm of each query and key head before rotary (Qwen3, Gemma 3)
#   sandwich                       norms after the attention and the MLP too (Gemma 2, 3)
#   embed_scale                    embeddings times this (Gemma: sqrt(d_model)), 1.0 for none
#   attn_scale                     query-key scale (head_dim ** -0.5; Gemma 2/3 query_pre_attn_scalar)
#   attn_softcap, final_softcap    tanh soft-capping of attention scores and logits (0.0: none)
#   sliding_window, sliding_layers keys more than sliding_window - 1 positions back are masked
#                                  in the layers marked True (0: no window)
#   fused_projections              Phi-3's qkv_proj and gate_up_proj
# The rotary frequencies (inv_freq) may cover part of each head (Phi-3's partial_rotary_factor).
# Absent norms are no module at all (None), behind TorchScript constants.


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float, offset: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model) if offset == 0.0 else torch.zeros(d_model))
        self.eps = eps
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            # x.float() of a float32 x is x itself, and a trace would then route the caller's
            # later uses of x (the residual) through this cast: a float32 residual stream when
            # the model later runs in bfloat16. A copy keeps the two apart.
            x32 = x.to(torch.float32, copy=True)
        else:
            x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.offset != 0.0:
            # Gemma: the scale is applied in float32, then cast (Llama casts, then scales).
            return (x32 * (self.offset + self.weight.float())).type_as(x)
        return self.weight * x32.type_as(x)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.size(-1) // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary positions on the first cos.size(-1) dimensions of each head (all of them, or a
    part: Phi-3's partial_rotary_factor, GPT-NeoX's rotary_pct)."""
    rotary = cos.size(-1)
    if rotary == x.size(-1):
        return x * cos + rotate_half(x) * sin
    turned, kept = x[..., :rotary], x[..., rotary:]
    return torch.cat((turned * cos + rotate_half(turned) * sin, kept), dim=-1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
           k_cache: torch.Tensor, v_cache: torch.Tensor, past_length: int, scale: float,
           softcap: float) -> torch.Tensor:
    """Causal attention of q [B, H, t, D] over the cache and k, v [B, H_kv, t, D] (written into
    the cache first); returns [B, t, H * D]."""
    b, n_heads, t, head_dim = q.size(0), q.size(1), q.size(2), q.size(3)
    if k_cache.numel() > 0:
        k = write_cache(k_cache, k, past_length)
        v = write_cache(v_cache, v, past_length)
    if k.size(1) != n_heads:
        repeat = n_heads // k.size(1)
        k = k.repeat_interleave(repeat, dim=1)
        v = v.repeat_interleave(repeat, dim=1)
    if softcap > 0.0:
        # Gemma 2: scores soft-capped before the mask, softmax in float32 (as transformers).
        scores = q.matmul(k.transpose(2, 3)) * scale
        scores = torch.tanh(scores / softcap) * softcap + mask
        out = scores.softmax(-1, dtype=torch.float32).type_as(q).matmul(v)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out.transpose(1, 2).reshape(b, t, n_heads * head_dim)


class LlamaAttention(nn.Module):
    __constants__ = ["qk_norm"]

    def __init__(self, cfg: dict):
        super().__init__()
        d_model, head_dim = cfg["d_model"], cfg["head_dim"]
        self.n_heads = cfg["n_heads"]
        self.n_kv_heads = cfg["n_kv_heads"]
        self.head_dim = head_dim
        self.q_proj = nn.Linear(d_model, self.n_heads * head_dim, bias=cfg["qkv_bias"])
        self.k_proj = nn.Linear(d_model, self.n_kv_heads * head_dim, bias=cfg["qkv_bias"])
        self.v_proj = nn.Linear(d_model, self.n_kv_heads * head_dim, bias=cfg["qkv_bias"])
        self.o_proj = nn.Linear(self.n_heads * head_dim, d_model, bias=cfg["out_bias"])
        # Qwen3, Gemma 3: RMSNorm of each query and key head. Absent otherwise (no module).
        self.qk_norm = bool(cfg.get("qk_norm", False))
        self.q_norm = self.k_norm = None
        if self.qk_norm:
            self.q_norm = RMSNorm(head_dim, cfg["norm_eps"], cfg.get("norm_offset", 0.0))
            self.k_norm = RMSNorm(head_dim, cfg["norm_eps"], cfg.get("norm_offset", 0.0))
        self.scale = float(cfg.get("attn_scale", head_dim ** -0.5))
        self.softcap = float(cfg.get("attn_softcap", 0.0))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                k_cache: torch.Tensor, v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        b, t = x.size(0), x.size(1)
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return self.o_proj(attend(q, k, v, mask, k_cache, v_cache, past_length, self.scale,
                                  self.softcap))


class Phi3Attention(nn.Module):
    """Phi-3: one fused projection qkv_proj, split into queries, keys and values."""

    def __init__(self, cfg: dict):
        super().__init__()
        d_model, head_dim = cfg["d_model"], cfg["head_dim"]
        self.n_heads = cfg["n_heads"]
        self.n_kv_heads = cfg["n_kv_heads"]
        self.head_dim = head_dim
        self.qkv_proj = nn.Linear(d_model, (self.n_heads + 2 * self.n_kv_heads) * head_dim,
                                  bias=cfg["qkv_bias"])
        self.o_proj = nn.Linear(self.n_heads * head_dim, d_model, bias=cfg["out_bias"])
        self.scale = float(cfg.get("attn_scale", head_dim ** -0.5))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                k_cache: torch.Tensor, v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        b, t = x.size(0), x.size(1)
        q_size, kv_size = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        q, k, v = self.qkv_proj(x).split([q_size, kv_size, kv_size], dim=-1)
        q = q.reshape(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.reshape(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.reshape(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return self.o_proj(attend(q, k, v, mask, k_cache, v_cache, past_length, self.scale, 0.0))


class LlamaMLP(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        d_model, d_ff, bias = cfg["d_model"], cfg["d_ff"], cfg["mlp_bias"]
        self.gate_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.up_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)
        self.gelu = cfg.get("activation", "silu") == "gelu_tanh"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate_proj(x)
        gate = F.gelu(gate, approximate="tanh") if self.gelu else F.silu(gate)
        return self.down_proj(gate * self.up_proj(x))


class Phi3MLP(nn.Module):
    """Phi-3: gate and up projections fused into gate_up_proj (gate first)."""

    def __init__(self, cfg: dict):
        super().__init__()
        d_model, d_ff, bias = cfg["d_model"], cfg["d_ff"], cfg["mlp_bias"]
        self.gate_up_proj = nn.Linear(d_model, 2 * d_ff, bias=bias)
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(up * F.silu(gate))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then + mlp(norm(.)). With sandwich norms (Gemma 2/3)
    the attention and MLP outputs are normalised again before their residual adds, and the MLP's
    pre-norm is pre_feedforward_layernorm (post_attention_layernorm is the attention's post-norm).
    `sandwich` is a TorchScript constant: the branch not taken is not compiled (so the absent
    norms need no module), and the MLP's pre-norm call sits at the top of the block's graph,
    where steer's hook layer finds it (resid_mid)."""

    __constants__ = ["sandwich"]

    def __init__(self, cfg: dict, sliding: bool = False):
        super().__init__()
        offset = cfg.get("norm_offset", 0.0)
        fused = cfg.get("fused_projections", False)
        self.self_attn = Phi3Attention(cfg) if fused else LlamaAttention(cfg)
        self.mlp = Phi3MLP(cfg) if fused else LlamaMLP(cfg)
        self.input_layernorm = RMSNorm(cfg["d_model"], cfg["norm_eps"], offset)
        self.post_attention_layernorm = RMSNorm(cfg["d_model"], cfg["norm_eps"], offset)
        self.sandwich = bool(cfg.get("sandwich", False))
        self.pre_feedforward_layernorm = self.post_feedforward_layernorm = None
        if self.sandwich:
            self.pre_feedforward_layernorm = RMSNorm(cfg["d_model"], cfg["norm_eps"], offset)
            self.post_feedforward_layernorm = RMSNorm(cfg["d_model"], cfg["norm_eps"], offset)
        self.sliding = sliding

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                local_cos: torch.Tensor, local_sin: torch.Tensor, local_mask: torch.Tensor,
                k_cache: torch.Tensor, v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        if self.sliding:
            cos, sin, mask = local_cos, local_sin, local_mask
        attended = self.self_attn(self.input_layernorm(x), cos, sin, mask, k_cache, v_cache,
                                  past_length)
        if self.sandwich:
            x = x + self.post_attention_layernorm(attended)
            return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        x = x + attended
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg: dict, inv_freq: torch.Tensor, attention_scaling: float,
                 local_inv_freq: Optional[torch.Tensor] = None, local_attention_scaling: float = 1.0):
        super().__init__()
        sliding = cfg.get("sliding_layers", [False] * cfg["n_layers"])
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg, sliding[i])
                                     for i in range(cfg["n_layers"])])
        self.norm = RMSNorm(cfg["d_model"], cfg["norm_eps"], cfg.get("norm_offset", 0.0))
        self.register_buffer("inv_freq", inv_freq.float().clone(), persistent=True)
        self.attention_scaling = attention_scaling
        # Gemma 3's sliding layers use their own rotary base; others share the global one.
        self.local_rope = local_inv_freq is not None
        local = local_inv_freq if local_inv_freq is not None else inv_freq
        self.register_buffer("local_inv_freq", local.float().clone(), persistent=True)
        self.local_attention_scaling = local_attention_scaling
        self.embed_scale = float(cfg.get("embed_scale", 1.0))
        self.sliding_window = int(cfg.get("sliding_window", 0))

    def rotary(self, positions: torch.Tensor, inv_freq: torch.Tensor, scaling: float,
               like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """cos and sin [B, 1, t, head_dim] in the dtype of `like`."""
        freqs = positions.float().unsqueeze(-1) * inv_freq.view(1, 1, -1)
        angles = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)
        cos = (angles.cos() * scaling).type_as(like)
        sin = (angles.sin() * scaling).type_as(like)
        return cos, sin

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        t = input_ids.size(1)
        x = self.embed_tokens(input_ids)
        if self.embed_scale != 1.0:
            # Gemma: the scale rounded to the activations' dtype first, as transformers does.
            x = x * x.new_full((1,), self.embed_scale)
        positions = position_ids_from_mask(attention_mask, t)
        cos, sin = self.rotary(positions, self.inv_freq, self.attention_scaling, x)
        local_cos, local_sin = cos, sin
        if self.local_rope:
            local_cos, local_sin = self.rotary(positions, self.local_inv_freq,
                                               self.local_attention_scaling, x)
        mask = additive_mask(attention_mask, t, x)
        local_mask = mask
        if self.sliding_window > 0:
            local_mask = additive_mask(attention_mask, t, x, self.sliding_window)
        cached = k_cache.numel() > 0
        for i, layer in enumerate(self.layers):
            if cached:
                x = layer(x, cos, sin, mask, local_cos, local_sin, local_mask, k_cache[i],
                          v_cache[i], past_length)
            else:
                x = layer(x, cos, sin, mask, local_cos, local_sin, local_mask, k_cache, v_cache,
                          past_length)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg: dict, inv_freq: torch.Tensor, attention_scaling: float,
                 local_inv_freq: Optional[torch.Tensor] = None, local_attention_scaling: float = 1.0):
        super().__init__()
        self.model = LlamaModel(cfg, inv_freq, attention_scaling, local_inv_freq,
                                local_attention_scaling)
        self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)
        self.final_softcap = float(cfg.get("final_softcap", 0.0))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(x)
        if self.final_softcap > 0.0:
            logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
        return logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        empty = torch.empty(0, dtype=self.lm_head.weight.dtype, device=input_ids.device)
        return self.head(self.model(input_ids, attention_mask, empty, empty, 0))

    @torch.jit.export
    def forward_cached(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       k_cache: torch.Tensor, v_cache: torch.Tensor,
                       past_length: int) -> torch.Tensor:
        return self.head(self.model(input_ids, attention_mask, k_cache, v_cache, past_length))


# ----------------------------------------------------------------------------- GPT-2 family


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight stored [in, out] as in Hugging Face."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[:-1] + (self.weight.size(1),)
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(shape)


class GPT2Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.c_attn = Conv1D(d_model, 3 * d_model)
        self.c_proj = Conv1D(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        b, t, d = x.size(0), x.size(1), x.size(2)
        q, k, v = self.c_attn(x).split(d, dim=2)
        q = q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        if k_cache.numel() > 0:
            k = write_cache(k_cache, k, past_length)
            v = write_cache(v_cache, v, past_length)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.c_proj(out.transpose(1, 2).reshape(b, t, d))


class GPT2MLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int, activation: str):
        super().__init__()
        self.c_fc = Conv1D(d_model, d_ff)
        self.c_proj = Conv1D(d_ff, d_model)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(activation(self.c_fc(x), self.activation))


class GPT2Block(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg["d_model"], eps=cfg["norm_eps"])
        self.attn = GPT2Attention(cfg["d_model"], cfg["n_heads"])
        self.ln_2 = nn.LayerNorm(cfg["d_model"], eps=cfg["norm_eps"])
        self.mlp = GPT2MLP(cfg["d_model"], cfg["d_ff"], cfg["activation"])

    def forward(self, x: torch.Tensor, mask: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask, k_cache, v_cache, past_length)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.wpe = nn.Embedding(cfg["max_positions"], cfg["d_model"])
        self.h = nn.ModuleList([GPT2Block(cfg) for _ in range(cfg["n_layers"])])
        self.ln_f = nn.LayerNorm(cfg["d_model"], eps=cfg["norm_eps"])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        t = input_ids.size(1)
        x = self.wte(input_ids) + self.wpe(position_ids_from_mask(attention_mask, t))
        mask = additive_mask(attention_mask, t, x)
        cached = k_cache.numel() > 0
        for i, block in enumerate(self.h):
            if cached:
                x = block(x, mask, k_cache[i], v_cache[i], past_length)
            else:
                x = block(x, mask, k_cache, v_cache, past_length)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.transformer = GPT2Model(cfg)
        self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        empty = torch.empty(0, dtype=self.lm_head.weight.dtype, device=input_ids.device)
        return self.lm_head(self.transformer(input_ids, attention_mask, empty, empty, 0))

    @torch.jit.export
    def forward_cached(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       k_cache: torch.Tensor, v_cache: torch.Tensor,
                       past_length: int) -> torch.Tensor:
        return self.lm_head(self.transformer(input_ids, attention_mask, k_cache, v_cache,
                                             past_length))


# ----------------------------------------------------------------------------- GPT-NeoX family


class GPTNeoXAttention(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.n_heads = cfg["n_heads"]
        self.head_dim = cfg["head_dim"]
        self.query_key_value = nn.Linear(cfg["d_model"], 3 * cfg["d_model"], bias=cfg["qkv_bias"])
        self.dense = nn.Linear(cfg["d_model"], cfg["d_model"], bias=cfg["out_bias"])
        self.scale = float(self.head_dim ** -0.5)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                k_cache: torch.Tensor, v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        b, t = x.size(0), x.size(1)
        # Per head [q | k | v], as GPT-NeoX lays out query_key_value.
        qkv = self.query_key_value(x).view(b, t, self.n_heads, 3 * self.head_dim).transpose(1, 2)
        q, k, v = qkv.chunk(3, dim=-1)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return self.dense(attend(q, k, v.contiguous(), mask, k_cache, v_cache, past_length,
                                 self.scale, 0.0))


class GPTNeoXMLP(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(cfg["d_model"], cfg["d_ff"])
        self.dense_4h_to_h = nn.Linear(cfg["d_ff"], cfg["d_model"])
        self.activation = cfg["activation"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense_4h_to_h(activation(self.dense_h_to_4h(x), self.activation))


class GPTNeoXLayer(nn.Module):
    """Parallel residual (the default): x + attn(ln1(x)) + mlp(ln2(x)), both reading the block
    input, so there is no resid_mid; sequential otherwise, as Llama. `parallel` is a TorchScript
    constant (see LlamaDecoderLayer)."""

    __constants__ = ["parallel"]

    def __init__(self, cfg: dict):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(cfg["d_model"], eps=cfg["norm_eps"])
        self.post_attention_layernorm = nn.LayerNorm(cfg["d_model"], eps=cfg["norm_eps"])
        self.attention = GPTNeoXAttention(cfg)
        self.mlp = GPTNeoXMLP(cfg)
        self.parallel = cfg["parallel_residual"]

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                k_cache: torch.Tensor, v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        attended = self.attention(self.input_layernorm(x), cos, sin, mask, k_cache, v_cache,
                                  past_length)
        if self.parallel:
            return self.mlp(self.post_attention_layernorm(x)) + attended + x
        x = attended + x
        return self.mlp(self.post_attention_layernorm(x)) + x


class GPTNeoXModel(nn.Module):
    def __init__(self, cfg: dict, inv_freq: torch.Tensor, attention_scaling: float):
        super().__init__()
        self.embed_in = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.layers = nn.ModuleList([GPTNeoXLayer(cfg) for _ in range(cfg["n_layers"])])
        self.final_layer_norm = nn.LayerNorm(cfg["d_model"], eps=cfg["norm_eps"])
        self.register_buffer("inv_freq", inv_freq.float().clone(), persistent=True)
        self.attention_scaling = attention_scaling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        t = input_ids.size(1)
        x = self.embed_in(input_ids)
        positions = position_ids_from_mask(attention_mask, t)
        freqs = positions.float().unsqueeze(-1) * self.inv_freq.view(1, 1, -1)
        angles = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)
        cos = (angles.cos() * self.attention_scaling).type_as(x)
        sin = (angles.sin() * self.attention_scaling).type_as(x)
        mask = additive_mask(attention_mask, t, x)
        cached = k_cache.numel() > 0
        for i, layer in enumerate(self.layers):
            if cached:
                x = layer(x, cos, sin, mask, k_cache[i], v_cache[i], past_length)
            else:
                x = layer(x, cos, sin, mask, k_cache, v_cache, past_length)
        return self.final_layer_norm(x)


class GPTNeoXForCausalLM(nn.Module):
    def __init__(self, cfg: dict, inv_freq: torch.Tensor, attention_scaling: float):
        super().__init__()
        self.gpt_neox = GPTNeoXModel(cfg, inv_freq, attention_scaling)
        self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        empty = torch.empty(0, dtype=self.lm_head.weight.dtype, device=input_ids.device)
        return self.lm_head(self.gpt_neox(input_ids, attention_mask, empty, empty, 0))

    @torch.jit.export
    def forward_cached(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       k_cache: torch.Tensor, v_cache: torch.Tensor,
                       past_length: int) -> torch.Tensor:
        return self.lm_head(self.gpt_neox(input_ids, attention_mask, k_cache, v_cache,
                                            past_length))
