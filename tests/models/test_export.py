"""tools/export_hf.py: the exported checkpoint loads in stock transformers and gives the same logits."""
from __future__ import annotations

import os.path as osp
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from geokit.engine.checkpoint import save_checkpoint_safetensors
from geokit.registry import MODELS

from .conftest import make_sample, model_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))


def test_export_gives_the_same_logits(tmp_path):
    import export_hf

    torch.manual_seed(0)
    cfg = model_config()
    model = MODELS.build(cfg)
    with torch.no_grad():                               # "trained": move every weight away from its init
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.01)
    ckpt = tmp_path / 'iter_1.safetensors'
    save_checkpoint_safetensors({'meta': {}, 'state_dict': model.state_dict()}, str(ckpt))
    config_file = tmp_path / 'cfg.py'
    config_file.write_text(f'model = {cfg!r}\n')
    out = tmp_path / 'exported'
    sys.path.insert(0, osp.join(ROOT, 'tests', 'models'))  # FakeTeacher is registered by conftest
    export_hf.main([str(config_file), str(ckpt), '--out', str(out)])

    hf = AutoModelForImageTextToText.from_pretrained(str(out)).eval()
    processor = AutoProcessor.from_pretrained(str(out))
    assert type(hf).__name__ == 'Qwen3VLForConditionalGeneration'
    model.eval()
    # an inference batch (no geometry tokens): what the exported plain MLLM sees
    data = model.data_preprocessor([make_sample(0), make_sample(1)], False)
    inputs = data['inputs']
    with torch.no_grad():
        ours = model(**data, mode='tensor').logits
        theirs = hf(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'],
                    mm_token_type_ids=inputs['mm_token_type_ids'], pixel_values_videos=inputs['pixel_values_videos'],
                    video_grid_thw=inputs['video_grid_thw']).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    # plain inference with the stock processor (no geometry tokens) also matches
    prompt = processor.apply_chat_template([{'role': 'user', 'content': [{'type': 'video'}, {'type': 'text',
                                            'text': '\nHow many chair(s) are in this room?'}]}],
                                           add_generation_prompt=True, tokenize=False)
    batch = processor(text=[prompt], videos=[make_sample(0)['frames']], return_tensors='pt',
                      video_metadata=[{'fps': 2.0, 'frames_indices': [0, 3, 6, 9], 'total_num_frames': 10}])
    pdata = model.data_preprocessor([make_sample(0)], False)
    assert torch.equal(batch['input_ids'], pdata['inputs']['input_ids'])
    with torch.no_grad():
        torch.testing.assert_close(model(**pdata, mode='tensor').logits, hf(**batch).logits, rtol=1e-5, atol=1e-5)
    heads = load_file(str(out / 'geovr_heads.safetensors'))
    assert set(heads) == set(model.heads.state_dict())
    assert not any(k.startswith('heads.') for k in load_file(str(out / 'model.safetensors')))
