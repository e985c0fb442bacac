#!/usr/bin/env python3
"""tools/export_model.py picks the chat format from the model's template, not its name, and
refuses a template steer cannot write. Builds a tiny GPT-2 (transformers from_config, seeded,
tokenizer trained here) three times with a different chat template, exports each and checks:

- Qwen2's ChatML template: exported, steer.json has chat_format "chatml" and Qwen2's default
  system prompt;
- Phi-3's template: exported with chat_format "phi3" (the directory is named "chatml-model" to
  show the name plays no part);
- a Vicuna-style template: the export exits non-zero with one line saying "unknown chat
  template", before exporting anything.

    check_export_chat_format.py --work DIR
"""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "tests" / "fixtures" / "chat_templates"


def tiny_hf(out: Path, template: str) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|system|>", "<|user|>",
                "<|assistant|>", "<|end|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["a tiny corpus for a tiny model"] * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                        bos_token="<|endoftext|>", chat_template=template)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=16, n_layer=1,
                                       n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def export(hf: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "export_model.py"), "--hf", str(hf),
                           "--out", str(out)], capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    failures = []
    cases = [("qwen2", "qwen2-model", "chatml", "You are a helpful assistant."),
             ("phi3", "chatml-model", "phi3", None),
             ("vicuna", "vicuna-model", None, None)]
    for template, name, expected, system in cases:
        hf, out = args.work / (name + "-hf"), args.work / name
        text = (TEMPLATES / f"{template}.jinja").read_text(encoding="utf-8")
        tiny_hf(hf, text)
        result = export(hf, out)
        if expected is None:
            lines = result.stderr.strip().splitlines()
            if result.returncode == 0 or not lines or \
                    not lines[-1].startswith("export_model: unknown chat template"):
                failures.append(f"{template}: expected a refusal, got exit {result.returncode}, "
                                f"stderr {result.stderr[-500:]!r}")
            elif (out / "steer.json").exists():
                failures.append(f"{template}: refused but wrote {out / 'steer.json'}")
            continue
        if result.returncode != 0:
            failures.append(f"{template}: export failed: {result.stderr[-800:]}")
            continue
        steer = json.loads((out / "steer.json").read_text())
        got = (steer["chat_format"], steer["chat_default_system_prompt"])
        if got != (expected, system):
            failures.append(f"{template}: steer.json has {got}, expected {(expected, system)}")
    for f in failures:
        print(f"check_export_chat_format: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
