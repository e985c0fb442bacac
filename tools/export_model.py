#!/usr/bin/env python3
"""Export a Hugging Face causal LM to a steer model directory.

    python tools/export_model.py --hf DIR --out MODEL_DIR        # a local HF directory
    python tools/export_model.py --gguf FILE --out MODEL_DIR     # a GGUF file, dequantized
    python tools/export_model.py --random FAMILY --out MODEL_DIR  # tiny random model for tests
    python tools/export_model.py --hf DIR --out MODEL_DIR --trace  # torch.jit.trace instead

A model directory holds model.pt (TorchScript, scripted: module hierarchy kept, not frozen),
tokenizer.json and steer.json (see docs/model-directory.md). Families: the rows of
tools/architectures.py (llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, gpt2). The export
checks the TorchScript module against transformers on a few prompts before it writes anything.

--trace writes a torch.jit.trace of the same modules' `forward` (full recompute) and no
`forward_cached`: a trace bakes Python ints such as the cache's past length in as constants.
steer.json's `methods` then lists `forward` alone, and steer runs the model by full recompute.
"""
import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import architectures  # noqa: E402
import steer_modules  # noqa: E402
from chat_formats import UnknownChatTemplate, chat_format, default_system_prompt  # noqa: E402

FORMAT_VERSION = 1
EXPORT_CHECK_TOLERANCE = 1e-4


def fail(message: str) -> None:
    sys.exit(f"export_model: {message}")


# ----------------------------------------------------------------------------- chat


def special_tokens(tokenizer, generation_config) -> dict:
    def entry(token):
        if token is None:
            return None
        return {"text": token, "id": tokenizer.convert_tokens_to_ids(token)}

    eos_ids = []
    if generation_config is not None and generation_config.eos_token_id is not None:
        eos = generation_config.eos_token_id
        eos_ids = list(eos) if isinstance(eos, (list, tuple)) else [eos]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    return {"bos": entry(tokenizer.bos_token), "eos": entry(tokenizer.eos_token),
            "pad": entry(tokenizer.pad_token), "unk": entry(tokenizer.unk_token),
            "eos_ids": eos_ids}


# ----------------------------------------------------------------------------- checking


@torch.no_grad()
def hf_logits(hf, ids, mask, split: int = 0):
    """transformers' logits, by full recompute (split 0) or by prefill of ids[:, :split] and
    the rest through its KV cache (the float32 result of a cached run differs from full
    recompute by up to ~2e-4 in transformers too, so each path is checked against its twin)."""
    if split == 0:
        return hf(input_ids=ids, attention_mask=mask, use_cache=False).logits
    first = hf(input_ids=ids[:, :split], attention_mask=mask[:, :split], use_cache=True)
    rest = hf(input_ids=ids[:, split:], attention_mask=mask, cache=first.cache,
              use_cache=True)
    return torch.cat([first.logits, rest.logits], dim=1)


@torch.no_grad()
def steer_cached_logits(scripted, cfg, ids, mask, split: int):
    """The exported module's logits through forward_cached: prefill ids[:, :split], then the rest."""
    shape = (cfg["n_layers"], ids.size(0), cfg["n_kv_heads"], ids.size(1) + 4, cfg["head_dim"])
    k, v = torch.zeros(shape), torch.zeros(shape)
    first = scripted.forward_cached(ids[:, :split], mask[:, :split], k, v, 0)
    rest = scripted.forward_cached(ids[:, split:], mask, k, v, split)
    return torch.cat([first, rest], dim=1)


@torch.no_grad()
def trace(module, cfg):
    """torch.jit.trace of `forward` on a left-padded example batch (so that nothing about
    padding is specialised away), not checked: check_traced does that at other shapes."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg["vocab_size"], (2, 11), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    # torch.jit.trace scripts a module's @torch.jit.export methods (forward_cached) along with
    # the trace, and then names the traced submodule methods forward1: hide it for a pure trace.
    module.forward_cached = None
    try:
        with warnings.catch_warnings():
            # The branches on `k_cache.numel() > 0` are constant in forward (the cache is empty).
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            return torch.jit.trace(module, (ids, mask), check_trace=False)
    finally:
        del module.forward_cached


@torch.no_grad()
def check_traced(hf, traced, scripted, cfg) -> float:
    """Max |logit difference| of the traced module against transformers (no padding, lengths
    and batch sizes other than the trace's) and against the scripted module on left-padded
    batches (real tokens only; transformers' positions do not skip padding)."""
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch, length in ((2, 2), (1, 7), (3, 19), (2, 33)):
        ids = torch.randint(0, cfg["vocab_size"], (batch, length), generator=generator)
        mask = torch.ones_like(ids)
        worst = max(worst, (hf_logits(hf, ids, mask) - traced(ids, mask)).abs().max().item())
        mask[0, :length // 2] = 0
        real = mask.bool()
        difference = (scripted(ids, mask) - traced(ids, mask))[real].abs().max().item()
        worst = max(worst, difference)
    return worst


@torch.no_grad()
def check_against_hf(hf, scripted, cfg) -> float:
    """Max |logit difference| between transformers and the scripted module, on both paths."""
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for length in (2, 7, 19):
        ids = torch.randint(0, cfg["vocab_size"], (2, length), generator=generator)
        mask = torch.ones_like(ids)
        split = length // 2
        full = (hf_logits(hf, ids, mask) - scripted(ids, mask)).abs().max().item()
        cached = (hf_logits(hf, ids, mask, split)
                  - steer_cached_logits(scripted, cfg, ids, mask, split)).abs().max().item()
        worst = max(worst, full, cached)
    return worst


# ----------------------------------------------------------------------------- GGUF files


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def gguf_to_hf(gguf_path: Path, out: Path, source: dict) -> None:
    """Writes a plain Hugging Face directory (float32 safetensors, tokenizer) for a GGUF model
    file, dequantized by transformers (through the gguf package), with `source` as
    steer_source.json (export() records it in steer.json)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    directory, name = str(gguf_path.parent), gguf_path.name
    quantized = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name,
                                                     dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    # transformers refuses to save a model it loaded through its GGUF quantizer; the weights
    # are already dequantized float32, so rebuild a plain model of the same config around them.
    config = quantized.config
    del config.quantization_config
    plain = type(quantized)(config)
    plain.load_state_dict(quantized.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "steer_source.json").write_text(json.dumps(source, indent=2) + "\n")


# ----------------------------------------------------------------------------- random models


TINY_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "I love you because you are kind. I hate you because you are cruel.",
    "Steering vectors change what a model computes, not what it is asked.",
    "1234 5678 90, tabs\tand  spaces\nnew lines.",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber \u4f60\u597d \U0001F600",
]


def make_random_hf(family: str, out: Path, seed: int) -> None:
    """Writes a tiny random-weight Hugging Face model and a small trained tokenizer to out."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TINY_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    vocab = tok.get_vocab_size()
    torch.manual_seed(seed)
    row = architectures.for_family(family)
    model = row.tiny(vocab)
    # Random init gives tiny weights; scale up so that layers differ visibly in tests. The
    # other families' norm weights and biases are drawn too: a norm that scales by 1 or a bias
    # of 0 would hide a test that forgets them (Qwen2's q/k/v biases, Gemma 2's post-norms in
    # orthogonalize).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
            elif family not in ("llama", "gpt2"):
                p.add_(torch.randn_like(p) * 0.3)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


# ----------------------------------------------------------------------------- export


def export(hf_dir: Path, out: Path, source: dict, traced: bool = False) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    hf = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    try:
        fmt = chat_format(tokenizer)  # before the export's minutes: refuse unknown templates
    except UnknownChatTemplate as error:
        fail(str(error))
    try:
        generation_config = GenerationConfig.from_pretrained(hf_dir)
    except OSError:
        generation_config = None
    model_type = hf.config.model_type
    row = architectures.for_model_type(model_type)
    if row is None:
        fail(f"model_type {model_type!r} is not supported; supported: "
             + ", ".join(architectures.supported_model_types()))
    try:
        module, cfg = row.build(hf, row)
    except architectures.Unsupported as e:
        fail(f"{model_type} model not supported: {e}")
    family = row.family
    layout, paths = row.layout(cfg["n_layers"]), row.paths()
    tokenizer_json = hf_dir / "tokenizer.json"
    if not tokenizer_json.is_file():
        fail(f"{tokenizer_json} is missing: steer needs a fast (tokenizers) tokenizer file")

    scripted = torch.jit.script(module.eval())
    error = check_against_hf(hf, scripted, cfg)
    if error > EXPORT_CHECK_TOLERANCE:
        fail(f"exported logits differ from transformers by {error:.3g} (> {EXPORT_CHECK_TOLERANCE})")
    methods = {"forward": "forward(input_ids, attention_mask) -> logits",
               "forward_cached": "forward_cached(input_ids, attention_mask, k_cache, v_cache, "
                                 "past_length) -> logits"}
    exported = scripted
    if traced:
        exported = trace(module.eval(), cfg)
        error = check_traced(hf, exported, scripted, cfg)
        if error > EXPORT_CHECK_TOLERANCE:
            fail(f"traced logits differ by {error:.3g} (> {EXPORT_CHECK_TOLERANCE}) from "
                 "transformers or from the scripted module")
        del methods["forward_cached"]

    tied = module.lm_head.weight is module.get_submodule(row.embedding).weight
    template = getattr(tokenizer, "chat_template", None)
    steer_json = {
        "format_version": FORMAT_VERSION,
        "family": family,
        "hf_model_type": model_type,
        "n_layers": cfg["n_layers"],
        "d_model": cfg["d_model"],
        "n_heads": cfg["n_heads"],
        "n_kv_heads": cfg["n_kv_heads"],
        "head_dim": cfg["head_dim"],
        "vocab_size": cfg["vocab_size"],
        "max_positions": cfg.get("max_positions", getattr(hf.config, "max_position_embeddings", None)),
        "tied_embeddings": tied,
        "dtype": "float32",
        "module": "model.pt",
        "tokenizer": "tokenizer.json",
        "methods": methods,
        "kv_cache_shape": ["n_layers", "batch", "n_kv_heads", "max_length", "head_dim"],
        "special_tokens": special_tokens(tokenizer, generation_config),
        "chat_format": fmt,
        "chat_default_system_prompt": default_system_prompt(tokenizer, fmt),
        "chat_template": template,
        "paths": paths,
        "layers": layout,
        "export": {"torch": torch.__version__, "mode": "trace" if traced else "script",
                   "check_max_abs_logit_error": error, "source": source},
    }

    out.mkdir(parents=True, exist_ok=True)
    exported.save(str(out / "model.pt"))
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    (out / "steer.json").write_text(json.dumps(steer_json, indent=2) + "\n")
    print(f"export_model: wrote {out} ({family}, {'traced' if traced else 'scripted'}, "
          f"{cfg['n_layers']} layers, d_model "
          f"{cfg['d_model']}, max |logit error| vs transformers {error:.2e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--hf", type=Path, help="Hugging Face model directory")
    group.add_argument("--gguf", type=Path, help="GGUF model file (llama.cpp), dequantized")
    group.add_argument("--random", choices=[row.family for row in architectures.ARCHITECTURES],
                       help="tiny random model of a family")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of --random weights")
    parser.add_argument("--keep-hf", type=Path,
                        help="with --random or --gguf: also keep the HF directory here")
    parser.add_argument("--trace", action="store_true",
                        help="torch.jit.trace forward only (no KV cache method) instead of scripting")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    if args.hf is not None:
        if not (args.hf / "config.json").is_file():
            fail(f"{args.hf} is not a Hugging Face model directory (no config.json)")
        source_file = args.hf / "steer_source.json"
        source = json.loads(source_file.read_text()) if source_file.is_file() else {"hf": str(args.hf)}
        export(args.hf, args.out, source, args.trace)
        return
    hf_dir = args.keep_hf or Path(tempfile.mkdtemp(prefix="steer-hf-"))
    if args.gguf is not None:
        if not args.gguf.is_file():
            fail(f"{args.gguf} is not a file (expected a GGUF model file)")
        source = {"gguf_file": args.gguf.name, "gguf_sha256": sha256(args.gguf)}
        gguf_to_hf(args.gguf, hf_dir, source)
    else:
        make_random_hf(args.random, hf_dir, args.seed)
        source = {"random": args.random, "seed": args.seed}
    export(hf_dir, args.out, {**source, "hf": str(hf_dir)}, args.trace)
    if args.keep_hf is None:
        shutil.rmtree(hf_dir)


if __name__ == "__main__":
    main()
