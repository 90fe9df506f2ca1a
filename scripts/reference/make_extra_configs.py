"""Generates extra HF transformers reference cases for config generality tests.

Run where transformers (>= 5.17, with gemma4_unified) and torch are installed:
    python3 scripts/reference/make_extra_configs.py OUT_DIR
Writes OUT_DIR/<case>/{config.json, generation_config.json, model.safetensors, input_ids.npy, logits_f32.npy,
logits_bf16w_f32.npy}. Random weights; every norm weight and layer_scalar is randomised so a `w` vs `1+w`
or misplaced layer_scalar bug shows.
"""
import os
import sys

import numpy as np
import torch
import transformers
from transformers import Gemma4UnifiedConfig, Gemma4UnifiedForConditionalGeneration, Gemma4UnifiedTextConfig

CASES = {
    # GQA on sliding layers, full layers WITH v_proj (attention_k_eq_v false), odd head counts and dims,
    # a pattern that is not 5:1, window 5, proportional rope with another fraction, softcap 20.
    "gqa_v_proj": dict(
        vocab_size=512, hidden_size=96, intermediate_size=160, num_hidden_layers=5,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "sliding_attention", "full_attention"],
        num_attention_heads=6, num_key_value_heads=3, head_dim=16, global_head_dim=24, num_global_key_value_heads=2,
        attention_k_eq_v=False, sliding_window=5, final_logit_softcapping=20.0,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 5000.0},
                         "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.5,
                                            "rope_theta": 20000.0}}),
    # MQA everywhere, k_eq_v full layers, default rope on full layers, no softcap, window 16.
    "mqa_no_softcap": dict(
        vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        num_attention_heads=4, num_key_value_heads=1, head_dim=32, global_head_dim=64, num_global_key_value_heads=1,
        attention_k_eq_v=True, sliding_window=16, final_logit_softcapping=None,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "default", "rope_theta": 1000000.0}}),
}


def randomise_norms(model, gen):
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith("norm.weight") or name.endswith("layer_scalar"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))


def main(out_dir):
    print("transformers", transformers.__version__, "torch", torch.__version__)
    for i, (name, kw) in enumerate(CASES.items()):
        gen = torch.Generator().manual_seed(1234 + i)
        torch.manual_seed(1234 + i)
        text = Gemma4UnifiedTextConfig(**kw, use_bidirectional_attention="vision", tie_word_embeddings=True)
        cfg = Gemma4UnifiedConfig(text_config=text, vision_config=None, audio_config=None,
                                  boi_token_id=500, eoi_token_id=501, image_token_id=502, video_token_id=503,
                                  boa_token_id=504, eoa_token_index=505, audio_token_id=506)
        cfg._attn_implementation = "eager"
        model = Gemma4UnifiedForConditionalGeneration(cfg).float().eval()
        randomise_norms(model, gen)
        ids = torch.randint(0, 500, (1, 61), generator=gen)
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits[0].float().numpy()
        d = os.path.join(out_dir, name)
        model.save_pretrained(d, safe_serialization=True)
        np.save(os.path.join(d, "input_ids.npy"), ids[0].numpy().astype(np.int64))
        np.save(os.path.join(d, "logits_f32.npy"), logits)
        with torch.no_grad():  # bf16-rounded weights, f32 math
            for n, t in list(model.named_parameters()) + list(model.named_buffers()):
                if "inv_freq" in n or "embed_scale" in n:
                    continue
                t.copy_(t.bfloat16().float())
            logits_b = model(input_ids=ids, use_cache=False).logits[0].float().numpy()
        np.save(os.path.join(d, "logits_bf16w_f32.npy"), logits_b)
        print(name, "ok", logits.shape, float(np.abs(logits).max()), "files", sorted(os.listdir(d)))


if __name__ == "__main__":
    main(sys.argv[1])
