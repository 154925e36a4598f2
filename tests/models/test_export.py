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



def _stock_logits(hf, inputs: dict) -> torch.Tensor:
    """Logits of the stock transformers model on the inputs geokit's preprocessor made (no geometry tokens)."""
    return hf(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'],
              mm_token_type_ids=inputs['mm_token_type_ids'], pixel_values_videos=inputs['pixel_values_videos'],
              video_grid_thw=inputs['video_grid_thw']).logits

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
        theirs = _stock_logits(hf, inputs)
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


def _perturb(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():                               # "trained": move every weight away from its init
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=g) * 0.01)


def _export_via_tool(tmp_path, cfg, model):
    import export_hf

    ckpt = tmp_path / 'iter_1.safetensors'
    save_checkpoint_safetensors({'meta': {}, 'state_dict': model.state_dict()}, str(ckpt))
    config_file = tmp_path / 'cfg.py'
    config_file.write_text(f'model = {cfg!r}\n')
    out = tmp_path / 'exported'
    sys.path.insert(0, osp.join(ROOT, 'tests', 'models'))
    return export_hf.main([str(config_file), str(ckpt), '--out', str(out)]), out


FUSION_NET = dict(img_size=112, patch_size=14, embed_dim=16, depth=2, num_heads=2, num_register_tokens=4,
                  patch_embed='conv', camera_head=dict(trunk_depth=1, num_heads=2),
                  dpt_head=dict(features=8, out_channels=(8, 8, 8, 8), intermediate_layer_idx=(0, 1, 1, 1)))


def test_fusion_export_is_whole_and_load_exported_gives_the_same_logits(tmp_path):
    """Spatial-MLLM-style model: the export carries the spatial encoder + connector, geokit.load_exported rebuilds
    the model from the export alone with equal logits (stock transformers alone is not the trained model)."""
    import geokit

    cfg = model_config(objectives=(), teacher=None, data_preprocessor=dict(
        type='QwenVLDataPreprocessor', insert_geometry_tokens=False),
        fusion=dict(type='SpatialEncoderFusion', connector=dict(type='MLPAddConnector', llm_dim=128),
                    spatial_encoder=dict(type='VGGTSpatialEncoder', image_size=56, net=FUSION_NET, init_seed=3),
                    match_vit_grid=True))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    _perturb(model)
    written, out = _export_via_tool(tmp_path, cfg, model)
    assert osp.isfile(written['fusion'])
    # what the tool exported: the checkpoint (connector, LLM) on the frozen encoder its config builds
    reference = MODELS.build(cfg).eval()
    reference.load_state_dict(model.state_dict(), strict=True)
    exported_encoder = load_file(written['fusion'])
    assert any(k.startswith('spatial_encoder.') for k in exported_encoder)
    assert any(k.startswith('connector.') for k in exported_encoder)
    for name, value in reference.fusion.spatial_encoder.state_dict().items():
        torch.testing.assert_close(exported_encoder[f'spatial_encoder.{name}'], value)

    loaded = geokit.load_exported(str(out))
    assert type(loaded).__name__ == 'GeometricMLLM' and loaded.fusion is not None and loaded.teacher is None
    data = reference.data_preprocessor([make_sample(0)], False)
    with torch.no_grad():
        ours = reference(**data, mode='tensor').logits
        theirs = loaded(**loaded.data_preprocessor([make_sample(0)], False), mode='tensor').logits
        stock = AutoModelForImageTextToText.from_pretrained(str(out)).eval()
        inputs = data['inputs']
        plain = stock(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'],
                      mm_token_type_ids=inputs['mm_token_type_ids'],
                      pixel_values_videos=inputs['pixel_values_videos'], video_grid_thw=inputs['video_grid_thw']).logits
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(plain, ours, atol=1e-3)   # without the fusion the logits differ: it must be exported


def test_geovr_export_stays_plain_hf(tmp_path):
    import geokit

    cfg = model_config()
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    _perturb(model)
    written, out = _export_via_tool(tmp_path, cfg, model)
    assert 'fusion' not in written and not osp.exists(out / 'geokit_fusion.safetensors')
    loaded = geokit.load_exported(str(out))
    assert loaded.fusion is None and not loaded.objective_names
    model.eval()
    data = model.data_preprocessor([make_sample(0)], False)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**data, mode='tensor').logits, model(**data, mode='tensor').logits,
                                   rtol=1e-5, atol=1e-5)


def test_lora_export_gives_the_same_logits(tmp_path):
    """LoRA adapters are merged into the exported stock checkpoint: same logits as the adapted model."""
    cfg = model_config()
    cfg['backbone']['lora'] = dict(r=4, lora_alpha=8)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    with torch.no_grad():                               # trained adapters (lora_B starts at zero)
        for name, param in model.named_parameters():
            if 'lora_' in name:
                param.add_(torch.randn_like(param) * 0.05)
    written, out = _export_via_tool(tmp_path, cfg, model)
    hf = AutoModelForImageTextToText.from_pretrained(str(out)).eval()
    assert not any('lora' in k for k in load_file(str(out / 'model.safetensors')))
    model.eval()
    data = model.data_preprocessor([make_sample(0)], False)
    inputs = data['inputs']
    with torch.no_grad():
        ours = model(**data, mode='tensor').logits
        theirs = _stock_logits(hf, inputs)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
