"""Which of steer's chat formats (include/steer/chat_template.hpp) a Hugging Face chat template
writes, for tools/export_model.py's steer.json.

steer does not run Jinja: it writes each family's layout in C++. So the export tool must be
sure the model's template writes that layout. `chat_format` picks the candidate format from
the template's markers, then renders probe conversations with transformers'
`apply_chat_template` and compares them with the layout steer writes for them; a template
that matches no format (e.g. Llama 3.1's, which adds a date to the system turn) is refused
with the format's name and the first difference, never exported with a wrong format.
"""

FORMATS = ("chatml", "llama3", "llama2", "mistral", "gemma", "phi3")

# Markers that pick the candidate format, in the order they are tried.
MARKERS = (
    ("chatml", ("<|im_start|>",)),
    ("llama3", ("<|start_header_id|>",)),
    ("llama2", ("[INST]", "<<SYS>>")),
    ("mistral", ("[INST]",)),
    ("gemma", ("<start_of_turn>",)),
    ("phi3", ("<|user|>", "<|end|>")),
)

SYSTEM = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "U1"}]
TURNS = [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"},
         {"role": "user", "content": "U2"}]

# What steer writes for the probes (SYSTEM, TURNS), with the generation prompt; the chatml
# TURNS rendering may start with the template's default system message.
EXPECTED = {
    "chatml": ("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
               "<|im_start|>assistant\n",
               "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
               "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n"),
    "llama3": ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n",
               "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "llama2": ("<s>[INST] <<SYS>>\nSYS\n<</SYS>>\n\nU1 [/INST]",
               "<s>[INST] U1 [/INST] A1 </s><s>[INST] U2 [/INST]"),
    "mistral": ("<s>[INST] SYS\n\nU1[/INST]", "<s>[INST] U1[/INST] A1</s>[INST] U2[/INST]"),
    "gemma": ("<bos><start_of_turn>user\nSYS\n\nU1<end_of_turn>\n<start_of_turn>model\n",
              "<bos><start_of_turn>user\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
              "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n"),
    "phi3": ("<|system|>\nSYS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\n",
             "<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nU2<|end|>\n<|assistant|>\n"),
}


class UnknownChatTemplate(ValueError):
    """The template writes no layout steer knows."""


def candidate(template) -> str:
    """The format whose markers the template holds, "none" without a template."""
    if not template:
        return "none"
    for name, markers in MARKERS:
        if all(m in template for m in markers):
            return name
    raise UnknownChatTemplate(
        "unknown chat template (it holds none of the markers of steer's formats "
        f"{', '.join(FORMATS)}): {template[:120]!r}... (hint: steer writes chat prompts in C++ "
        "for these families only; export a model of one of them, or add its format to "
        "include/steer/chat_template.hpp and tools/chat_formats.py)")


def render(tokenizer, messages):
    """The template's rendering of `messages` with the generation prompt, or None when the
    template refuses them (e.g. Gemma 1/2 and Mistral v0.1 refuse a system message)."""
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as error:  # jinja2's TemplateError from raise_exception
        if "raise_exception" in repr(error) or type(error).__name__ == "TemplateError":
            return None
        raise


def first_difference(a: str, b: str) -> str:
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    return f"at character {i}: the template writes {a[i:i + 40]!r}, steer {b[i:i + 40]!r}"


def chat_format(tokenizer) -> str:
    """The name of steer's format for `tokenizer.chat_template` ("none" without one).
    Raises UnknownChatTemplate when the template's layout is not one steer writes."""
    template = getattr(tokenizer, "chat_template", None)
    name = candidate(template)
    if name == "none":
        return name
    with_system, turns = EXPECTED[name]
    got_turns = render(tokenizer, TURNS)
    got_system = render(tokenizer, SYSTEM)
    if name == "chatml" and got_turns is not None and got_turns.startswith("<|im_start|>system\n"):
        got_turns = got_turns[got_turns.index("<|im_end|>\n") + len("<|im_end|>\n"):]
    checks = [("a user/assistant/user conversation", got_turns, turns)]
    # A template that refuses a system message (Gemma 1/2) still matches: steer folds it in
    # the family's documented way (docs/model-directory.md).
    if got_system is not None:
        checks.append(("a system and a user message", got_system, with_system))
    for what, got, expected in checks:
        if got != expected:
            detail = ("it refuses it" if got is None else first_difference(got, expected))
            raise UnknownChatTemplate(
                f"the chat template looks like steer's '{name}' format but writes {what} "
                f"differently: {detail} (hint: steer writes this family's published template "
                "only; see docs/model-directory.md)")
    return name


def default_system_prompt(tokenizer, fmt: str):
    """The system message the chat template inserts when a conversation has none (SmolLM2's
    and Qwen2's templates do), found by rendering a conversation with one user message."""
    if fmt != "chatml":
        return None
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    start = "<|im_start|>system\n"
    if not text.startswith(start):
        return None
    return text[len(start):text.index("<|im_end|>")]
