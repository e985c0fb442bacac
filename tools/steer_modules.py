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
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


def position_ids_from_mask(attention_mask: torch.Tensor, t: int) -> torch.Tensor:
    """Position of each of the last t columns: the count of real tokens before it."""
    positions = attention_mask.long().cumsum(-1) - 1
    positions = positions.clamp(min=0)
    return positions[:, positions.size(1) - t:]


def additive_mask(attention_mask: torch.Tensor, t: int, like: torch.Tensor) -> torch.Tensor:
    """[B, 1, t, S] additive mask in the dtype of `like`: 0 where query i (at S - t + i) may
    attend key j, else the dtype's lowest finite value.

    A fully masked row (a left-pad query) stays finite, so its softmax does too; those rows are
    never read.
    """
    total = attention_mask.size(1)
    column = torch.ones_like(attention_mask[0]).cumsum(0) - 1  # 0 .. total-1, on the mask's device
    query = column[total - t:].view(t, 1)
    key = column.view(1, total)
    allowed = (key <= query).view(1, 1, t, total) & (attention_mask != 0).view(-1, 1, 1, total)
    zero = like.new_zeros(())
    minimum = like.new_full((), float("-inf")).nan_to_num()  # the lowest finite value
    return torch.where(allowed, zero, minimum)


def write_cache(cache: torch.Tensor, new: torch.Tensor, past_length: int) -> torch.Tensor:
    """Writes new [B, H, t, D] into cache [B, H, max, D] at past_length; returns the filled prefix."""
    end = past_length + new.size(2)
    cache[:, :, past_length:end] = new
    return cache[:, :, :end]


# ----------------------------------------------------------------------------- Llama family


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            # x.float() of a float32 x is x itself, and a trace would then route the caller's
            # later uses of x (the residual) through this cast: a float32 residual stream when
            # the model later runs in bfloat16. A copy keeps the two apart.
            x32 = x.to(torch.float32, copy=True)
        else:
            x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.type_as(x)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.size(-1) // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, head_dim: int,
                 qkv_bias: bool, out_bias: bool):
        super().__init__()
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = head_dim
        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(n_heads * head_dim, d_model, bias=out_bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                k_cache: torch.Tensor, v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        b, t = x.size(0), x.size(1)
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if k_cache.numel() > 0:
            k = write_cache(k_cache, k, past_length)
            v = write_cache(v_cache, v, past_length)
        if self.n_kv_heads != self.n_heads:
            repeat = self.n_heads // self.n_kv_heads
            k = k.repeat_interleave(repeat, dim=1)
            v = v.repeat_interleave(repeat, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class LlamaMLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int, bias: bool):
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.up_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.self_attn = LlamaAttention(cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"],
                                        cfg["head_dim"], cfg["qkv_bias"], cfg["out_bias"])
        self.mlp = LlamaMLP(cfg["d_model"], cfg["d_ff"], cfg["mlp_bias"])
        self.input_layernorm = RMSNorm(cfg["d_model"], cfg["norm_eps"])
        self.post_attention_layernorm = RMSNorm(cfg["d_model"], cfg["norm_eps"])

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                k_cache: torch.Tensor, v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, k_cache, v_cache,
                               past_length)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg: dict, inv_freq: torch.Tensor, attention_scaling: float):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg["n_layers"])])
        self.norm = RMSNorm(cfg["d_model"], cfg["norm_eps"])
        self.register_buffer("inv_freq", inv_freq.float().clone(), persistent=True)
        self.attention_scaling = attention_scaling

    def rotary(self, positions: torch.Tensor, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """cos and sin [B, 1, t, head_dim] in the dtype of `like`."""
        freqs = positions.float().unsqueeze(-1) * self.inv_freq.view(1, 1, -1)
        angles = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)
        cos = (angles.cos() * self.attention_scaling).type_as(like)
        sin = (angles.sin() * self.attention_scaling).type_as(like)
        return cos, sin

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, past_length: int) -> torch.Tensor:
        t = input_ids.size(1)
        x = self.embed_tokens(input_ids)
        cos, sin = self.rotary(position_ids_from_mask(attention_mask, t), x)
        mask = additive_mask(attention_mask, t, x)
        cached = k_cache.numel() > 0
        for i, layer in enumerate(self.layers):
            if cached:
                x = layer(x, cos, sin, mask, k_cache[i], v_cache[i], past_length)
            else:
                x = layer(x, cos, sin, mask, k_cache, v_cache, past_length)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg: dict, inv_freq: torch.Tensor, attention_scaling: float):
        super().__init__()
        self.model = LlamaModel(cfg, inv_freq, attention_scaling)
        self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        empty = torch.empty(0, dtype=self.lm_head.weight.dtype, device=input_ids.device)
        return self.lm_head(self.model(input_ids, attention_mask, empty, empty, 0))

    @torch.jit.export
    def forward_cached(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       k_cache: torch.Tensor, v_cache: torch.Tensor,
                       past_length: int) -> torch.Tensor:
        return self.lm_head(self.model(input_ids, attention_mask, k_cache, v_cache, past_length))


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
        h = self.c_fc(x)
        if self.activation == "gelu_new" or self.activation == "gelu_pytorch_tanh":
            h = F.gelu(h, approximate="tanh")
        elif self.activation == "gelu":
            h = F.gelu(h)
        else:
            h = F.relu(h)
        return self.c_proj(h)


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
