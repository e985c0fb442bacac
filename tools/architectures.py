"""The export side of steer's architecture table: one row per model family, keyed by the
Hugging Face `model_type`s it exports (the C++ side is include/steer/architecture.hpp, one row
per family with the same name).

A row says which module class of tools/steer_modules.py runs the family, how a Hugging Face
config translates to that module's cfg (and which options it refuses), and where the blocks,
attention, MLP, embedding, final norm and unembedding are. tools/export_model.py and the test
fixtures read it. Adding a family: a row here, a row in architecture.hpp and, where no module
class fits, its module code in steer_modules.py (docs/model-directory.md, "Adding a family").
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

import steer_modules


class Unsupported(Exception):
    """A model option steer cannot export; the message says which and what is supported."""


@dataclass(frozen=True)
class Architecture:
    family: str                 # steer.json "family" and the C++ row's name
    model_types: Tuple[str, ...]  # Hugging Face config.model_type values exported by this row
    blocks: str                 # module list of the blocks, e.g. "model.layers"
    attn: str                   # attention submodule of a block
    mlp: str                    # MLP submodule of a block
    embedding: str
    final_norm: str
    unembedding: str
    mid_norm: Optional[str]     # the MLP's pre-norm (input = resid_mid)
    attn_post_norm: Optional[str]  # a norm between the attention and its residual add (Gemma 2/3)
    build: Callable             # (hf model, row) -> (module, cfg)
    tiny: Callable              # vocab size -> a tiny transformers model (export_model.py --random)

    def layout(self, n_layers: int) -> List[Dict[str, str]]:
        return [{"block": f"{self.blocks}.{i}", "attn": f"{self.blocks}.{i}.{self.attn}",
                 "mlp": f"{self.blocks}.{i}.{self.mlp}"} for i in range(n_layers)]

    def paths(self) -> Dict[str, str]:
        return {"embedding": self.embedding, "final_norm": self.final_norm,
                "unembedding": self.unembedding}


# ----------------------------------------------------------------------------- config translation


def _decoder_cfg(c, family: str) -> dict:
    """The cfg of steer_modules.LlamaForCausalLM for a Llama-style config; raises Unsupported."""
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    activation = getattr(c, "hidden_activation", None) or c.hidden_act
    gemma = family in ("gemma", "gemma2", "gemma3")
    if activation in ("silu",):
        activation = "silu"
    elif activation in ("gelu_pytorch_tanh", "gelu_tanh") or (gemma and activation == "gelu"):
        activation = "gelu_tanh"
    else:
        raise Unsupported(f"{family} model with activation {activation!r}; steer exports 'silu' "
                          "and 'gelu_pytorch_tanh'")
    cfg = {
        "vocab_size": c.vocab_size, "d_model": c.hidden_size, "n_layers": c.num_hidden_layers,
        "n_heads": c.num_attention_heads, "n_kv_heads": c.num_key_value_heads,
        "head_dim": head_dim, "d_ff": c.intermediate_size, "norm_eps": c.rms_norm_eps,
        "activation": activation, "norm_offset": 1.0 if gemma else 0.0,
        "qk_norm": family in ("qwen3", "gemma3"), "sandwich": family in ("gemma2", "gemma3"),
        "embed_scale": float(c.hidden_size ** 0.5) if gemma else 1.0,
        "attn_scale": float(head_dim ** -0.5),
        "attn_softcap": 0.0, "final_softcap": 0.0, "sliding_window": 0,
        "sliding_layers": [False] * c.num_hidden_layers,
    }
    if family in ("gemma2", "gemma3"):
        cfg["attn_scale"] = float(c.query_pre_attn_scalar ** -0.5)
        cfg["attn_softcap"] = float(getattr(c, "attn_logit_softcapping", None) or 0.0)
        cfg["final_softcap"] = float(getattr(c, "final_logit_softcapping", None) or 0.0)
    # Sliding windows: per layer from layer_types (Qwen2/3, Gemma 2/3), every layer (Mistral).
    window = getattr(c, "sliding_window", None)
    layer_types = getattr(c, "layer_types", None)
    if window:
        if layer_types is not None:
            cfg["sliding_layers"] = [t == "sliding_attention" for t in layer_types]
        elif family == "mistral":
            cfg["sliding_layers"] = [True] * c.num_hidden_layers
        if any(cfg["sliding_layers"]):
            cfg["sliding_window"] = int(window)
    elif layer_types is not None and any(t != "full_attention" for t in layer_types):
        raise Unsupported(f"layer types {sorted(set(layer_types))} without a sliding_window")
    if layer_types is not None and any(t not in ("full_attention", "sliding_attention")
                                       for t in layer_types):
        raise Unsupported(f"layer types {sorted(set(layer_types))}; steer exports "
                          "full_attention and sliding_attention")
    if getattr(c, "use_bidirectional_attention", False):
        raise Unsupported("bidirectional attention (use_bidirectional_attention)")
    return cfg


def _rotary(hf, layer_type: str) -> Tuple[torch.Tensor, float]:
    """inv_freq and attention_scaling of transformers' rotary embedding for a layer type (Gemma 3
    keeps one per layer type: full_attention_inv_freq, sliding_attention_inv_freq)."""
    rotary = hf.model.rotary_emb
    if hasattr(rotary, f"{layer_type}_inv_freq"):
        return (getattr(rotary, f"{layer_type}_inv_freq"),
                float(getattr(rotary, f"{layer_type}_attention_scaling", 1.0)))
    return rotary.inv_freq, float(getattr(rotary, "attention_scaling", 1.0))


def build_decoder(hf, row: "Architecture"):
    cfg = _decoder_cfg(hf.config, row.family)
    # Biases as the checkpoint has them (Qwen2: q, k and v; some Llama variants: all).
    first = hf.model.layers[0]
    fused = row.family == "phi3"
    cfg["fused_projections"] = fused
    cfg["qkv_bias"] = (first.self_attn.qkv_proj if fused else first.self_attn.q_proj).bias is not None
    cfg["out_bias"] = first.self_attn.o_proj.bias is not None
    cfg["mlp_bias"] = (first.mlp.gate_up_proj if fused else first.mlp.gate_proj).bias is not None
    inv_freq, scaling = _rotary(hf, "full_attention")
    local_inv_freq, local_scaling = _rotary(hf, "sliding_attention")
    own_local = not torch.equal(local_inv_freq, inv_freq) or local_scaling != scaling
    module = steer_modules.LlamaForCausalLM(cfg, inv_freq, scaling,
                                            local_inv_freq if own_local else None, local_scaling)
    state = {k: v for k, v in hf.state_dict().items() if "rotary_emb." not in k}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if sorted(missing) != ["model.inv_freq", "model.local_inv_freq"] or unexpected:
        raise Unsupported(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    if hf.config.tie_word_embeddings:
        module.lm_head.weight = module.model.embed_tokens.weight
    return module, cfg


def build_gpt2(hf, row: "Architecture"):
    c = hf.config
    cfg = {
        "vocab_size": c.vocab_size, "d_model": c.n_embd, "n_layers": c.n_layer,
        "n_heads": c.n_head, "n_kv_heads": c.n_head, "head_dim": c.n_embd // c.n_head,
        "d_ff": c.n_inner or 4 * c.n_embd, "norm_eps": c.layer_norm_epsilon,
        "max_positions": c.n_positions, "activation": c.activation_function,
    }
    if c.activation_function not in {"gelu_new", "gelu_pytorch_tanh", "gelu", "relu"}:
        raise Unsupported(f"GPT-2 activation {c.activation_function!r}")
    if getattr(c, "scale_attn_by_inverse_layer_idx", False) or getattr(c, "reorder_and_upcast_attn", False):
        raise Unsupported("GPT-2 options scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn")
    module = steer_modules.GPT2LMHeadModel(cfg)
    state = {k: v for k, v in hf.state_dict().items()
             if not (k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"))}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise Unsupported(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    module.lm_head.weight = module.transformer.wte.weight
    return module, cfg


def build_gpt_neox(hf, row: "Architecture"):
    c = hf.config
    if c.hidden_act not in {"gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu"}:
        raise Unsupported(f"GPT-NeoX activation {c.hidden_act!r}")
    cfg = {
        "vocab_size": c.vocab_size, "d_model": c.hidden_size, "n_layers": c.num_hidden_layers,
        "n_heads": c.num_attention_heads, "n_kv_heads": c.num_attention_heads,
        "head_dim": c.hidden_size // c.num_attention_heads, "d_ff": c.intermediate_size,
        "norm_eps": c.layer_norm_eps, "activation": c.hidden_act,
        "parallel_residual": bool(c.use_parallel_residual),
        "qkv_bias": bool(c.attention_bias), "out_bias": bool(c.attention_bias),
    }
    rotary = hf.gpt_neox.rotary_emb
    module = steer_modules.GPTNeoXForCausalLM(cfg, rotary.inv_freq,
                                              float(getattr(rotary, "attention_scaling", 1.0)))
    state = {k: v for k, v in hf.state_dict().items() if "rotary_emb." not in k}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing != ["gpt_neox.inv_freq"] or unexpected:
        raise Unsupported(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    if c.tie_word_embeddings:
        module.lm_head.weight = module.gpt_neox.embed_in.weight
    return module, cfg


# ----------------------------------------------------------------------------- tiny models
# For --random: a few seconds to export and test. Sliding windows of 5 tokens, so that the
# tests' sequences (up to 30 tokens) reach past them; Gemma 3's local and global layers with
# rope bases 1e4 and 1e6.

TINY_WINDOW = 5
_TINY_LAYER_TYPES = ["sliding_attention", "full_attention", "sliding_attention"]


def _tiny_decoder(vocab: int) -> dict:
    return dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                bos_token_id=0, eos_token_id=0, pad_token_id=0)


def _tiny(family: str, vocab: int):
    import transformers as t

    d = _tiny_decoder(vocab)
    if family == "llama":
        return t.LlamaForCausalLM(t.LlamaConfig(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0))
    if family == "gpt2":
        return t.GPT2LMHeadModel(t.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4,
                                              n_positions=256, bos_token_id=0, eos_token_id=0))
    if family == "mistral":
        return t.MistralForCausalLM(t.MistralConfig(**d, sliding_window=TINY_WINDOW,
                                                    tie_word_embeddings=False))
    if family == "qwen2":
        return t.Qwen2ForCausalLM(t.Qwen2Config(**d, tie_word_embeddings=True))
    if family == "qwen3":
        return t.Qwen3ForCausalLM(t.Qwen3Config(**d, head_dim=16, tie_word_embeddings=True))
    if family == "gemma":
        return t.GemmaForCausalLM(t.GemmaConfig(**d, head_dim=16))
    if family == "gemma2":
        return t.Gemma2ForCausalLM(t.Gemma2Config(
            **d, head_dim=16, query_pre_attn_scalar=24, sliding_window=TINY_WINDOW,
            attn_logit_softcapping=5.0, final_logit_softcapping=3.0, layer_types=_TINY_LAYER_TYPES))
    if family == "gemma3":
        return t.Gemma3ForCausalLM(t.Gemma3TextConfig(
            **d, head_dim=16, query_pre_attn_scalar=24, sliding_window=TINY_WINDOW,
            layer_types=_TINY_LAYER_TYPES,
            rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}))
    if family == "phi3":
        return t.Phi3ForCausalLM(t.Phi3Config(**d, partial_rotary_factor=0.5,
                                              tie_word_embeddings=False))
    if family == "gpt_neox":
        return t.GPTNeoXForCausalLM(t.GPTNeoXConfig(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
            num_attention_heads=4, max_position_embeddings=256, rotary_pct=0.5,
            use_parallel_residual=True, bos_token_id=0, eos_token_id=0))
    raise KeyError(family)


# ----------------------------------------------------------------------------- the table


def _decoder_row(family: str, model_types: Tuple[str, ...], sandwich: bool = False) -> Architecture:
    return Architecture(
        family=family, model_types=model_types, blocks="model.layers", attn="self_attn",
        mlp="mlp", embedding="model.embed_tokens", final_norm="model.norm", unembedding="lm_head",
        mid_norm="pre_feedforward_layernorm" if sandwich else "post_attention_layernorm",
        attn_post_norm="post_attention_layernorm" if sandwich else None, build=build_decoder,
        tiny=lambda vocab: _tiny(family, vocab))


ARCHITECTURES: List[Architecture] = [
    _decoder_row("llama", ("llama", "smollm")),
    _decoder_row("mistral", ("mistral",)),
    _decoder_row("qwen2", ("qwen2",)),
    _decoder_row("qwen3", ("qwen3",)),
    _decoder_row("gemma", ("gemma",)),
    _decoder_row("gemma2", ("gemma2",), sandwich=True),
    _decoder_row("gemma3", ("gemma3_text",), sandwich=True),
    _decoder_row("phi3", ("phi3",)),
    Architecture(family="gpt2", model_types=("gpt2",), blocks="transformer.h", attn="attn",
                 mlp="mlp", embedding="transformer.wte", final_norm="transformer.ln_f",
                 unembedding="lm_head", mid_norm="ln_2", attn_post_norm=None, build=build_gpt2,
                 tiny=lambda vocab: _tiny("gpt2", vocab)),
    # mid_norm: a parallel-residual block (use_parallel_residual) calls it on its input, and
    # has no resid_mid; a sequential one has.
    Architecture(family="gpt_neox", model_types=("gpt_neox",), blocks="gpt_neox.layers",
                 attn="attention", mlp="mlp", embedding="gpt_neox.embed_in",
                 final_norm="gpt_neox.final_layer_norm", unembedding="lm_head",
                 mid_norm="post_attention_layernorm", attn_post_norm=None, build=build_gpt_neox,
                 tiny=lambda vocab: _tiny("gpt_neox", vocab)),
]


def supported_model_types() -> List[str]:
    return sorted(t for row in ARCHITECTURES for t in row.model_types)


def for_model_type(model_type: str) -> Optional[Architecture]:
    """The row that exports Hugging Face `model_type`, or None."""
    for row in ARCHITECTURES:
        if model_type in row.model_types:
            return row
    return None


def for_family(family: str) -> Architecture:
    for row in ARCHITECTURES:
        if row.family == family:
            return row
    raise KeyError(f"no architecture row for family {family!r}")
