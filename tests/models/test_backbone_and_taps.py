"""Backbones (stock transformers classes), hidden-state taps and the head-layer mapping."""
from __future__ import annotations

import pytest
import torch

from geokit.models.mllms import Qwen25VLBackbone, TapRequest
from geokit.models.mllms.taps import teacher_to_llm_layer
from geokit.registry import MODELS

from .conftest import make_sample, model_config


def test_teacher_layer_mapping_matches_geovr():
    # GeoVR: VGGT layers [4, 11, 17, 23] of 24 -> round((i + 1) / 24 * L) for a 28-layer Qwen3-VL-2B
    assert [teacher_to_llm_layer(i, 24, 28) for i in (4, 11, 17, 23)] == [6, 14, 21, 28]
    request = TapRequest.from_config(dict(tokens='video', teacher_layers=[4, 11, 17, 23], teacher_num_layers=24), 28)
    assert request.layers == (6, 14, 21, 28) and request.teacher_layers == (4, 11, 17, 23)
    assert TapRequest.from_config(dict(tokens='camera'), 28).layers == (28,)
    with pytest.raises(ValueError, match='outside'):
        TapRequest.from_config(dict(tokens='camera', layers=[29]), 28)
    with pytest.raises(ValueError, match='tokens'):
        TapRequest.from_config(dict(tokens='text'), 28)


def test_missing_path_names_the_config_key():
    with pytest.raises(FileNotFoundError, match='model.backbone.path'):
        Qwen25VLBackbone('/nonexistent/Qwen2.5-VL-3B-Instruct')


@pytest.mark.parametrize('backbone', ['Qwen3VLBackbone', 'Qwen25VLBackbone'])
def test_taps_shapes_and_values(backbone):
    """Taps have the documented shapes and equal the stock model's output_hidden_states at those layers."""
    torch.manual_seed(0)
    model = MODELS.build(model_config(backbone, objectives=('pose', 'depth', 'scale'))).eval()
    data = model.data_preprocessor([make_sample(0), make_sample(1)], True)
    calls = []
    for layer in model.backbone.decoder_layers:
        layer.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        out = model(**data, mode='tensor')
    b, t = 2, 4 // model.backbone.frames_per_token
    assert {k: tuple(v.shape) for k, v in out.taps.video.items()} == {k: (b, t, 4, 4, 128) for k in (1, 2, 3, 4)}
    assert tuple(out.taps.camera[4].shape) == (b, t, 128) and tuple(out.taps.scale[4].shape) == (b, 128)
    assert len(calls) == model.backbone.num_layers                      # one pass, no extra forward
    # hooks are gone after the forward
    assert all(not layer._forward_hooks or len(layer._forward_hooks) == 1 for layer in model.backbone.decoder_layers)
    # reference: the stock model's hidden_states (layer k = hidden_states[k]) at the same token positions
    inputs = data['inputs']
    rope = model.backbone.position_kwargs(inputs['input_ids'], inputs['attention_mask'], inputs['mm_token_type_ids'],
                                          inputs['video_grid_thw'], inputs.get('second_per_grid_ts'), True)
    with torch.no_grad():
        ref = model.backbone.hf_model(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'],
                                      mm_token_type_ids=inputs['mm_token_type_ids'],
                                      pixel_values_videos=inputs['pixel_values_videos'], output_hidden_states=True,
                                      **{k: v for k, v in rope.items() if v is not None})
    ids = inputs['input_ids']
    video = ref.hidden_states[2][ids == model.backbone.video_token_id].view(b, t, 4, 4, 128)
    torch.testing.assert_close(out.taps.video[2], video, rtol=1e-4, atol=1e-5)
    camera = ref.hidden_states[4][ids == model.backbone.geometry_token_ids['camera']].view(b, t, 128)
    # transformers applies the final norm to its last hidden state; the tap is the raw output of decoder layer 4
    final_norm = model.backbone.hf_model.model.language_model.norm
    torch.testing.assert_close(final_norm(out.taps.camera[4]), camera, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-4, atol=1e-5)
    assert out.predictions['depth']['depth'].shape == (b, 4, 32, 32)
    assert (out.predictions['depth']['depth_conf'] > 1).all() and (out.predictions['scale']['scale'] > 0).all()
    assert out.predictions['pose']['pose_enc'].shape == (b, 4, 9)


def test_geometry_token_positions_and_labels():
    """Camera after each temporal group, scale after the video; only answer tokens (+ <|im_end|>) are labelled."""
    model = MODELS.build(model_config(objectives=()))
    data = model.data_preprocessor([make_sample(0)], True)
    ids, labels = data['inputs']['input_ids'][0], data['inputs']['labels'][0]
    tok = model.backbone.processor.tokenizer
    text = tok.decode(ids)
    assert text.count('<|geo_camera|>') == 2 and text.count('<|geo_scale|>') == 1
    assert '<|video_pad|><|geo_camera|><|geo_scale|><|vision_end|>' in text
    assert tok.decode(labels[labels != -100]) == '3<|im_end|>'
    mm = data['inputs']['mm_token_type_ids'][0]
    assert (mm[ids == model.backbone.geometry_token_ids['camera']] == 0).all()
    assert (mm[ids == model.backbone.video_token_id] != 0).all()


def test_qwen25_split_grid_keeps_vision_output():
    """Splitting Qwen2.5-VL's grid per temporal group (legacy 'consecutive_text' positions) leaves the ViT output
    unchanged; the default positions keep the grid whole."""
    torch.manual_seed(0)
    backbone = Qwen25VLBackbone('geokit://mllms/tiny-qwen2_5vl', load_weights=False,
                                geometry_positions='consecutive_text')
    proc = backbone.processor
    batch = proc(text=['<|vision_start|><|video_pad|><|vision_end|>'], videos=[make_sample(0)['frames']],
                 return_tensors='pt')
    grid = batch['video_grid_thw']
    split = backbone.rope_kwargs(grid, batch['second_per_grid_ts'], True)['video_grid_thw']
    assert split.tolist() == [[1, 8, 8], [1, 8, 8]]
    backbone.geometry_positions = 'frame_last_patch'
    assert backbone.rope_kwargs(grid, batch['second_per_grid_ts'], True)['video_grid_thw'].tolist() == [[2, 8, 8]]
    with torch.no_grad():
        full = torch.cat(backbone.encode_video(batch['pixel_values_videos'], grid).pooler_output)
        parts = torch.cat(backbone.encode_video(batch['pixel_values_videos'], split).pooler_output)
    torch.testing.assert_close(full, parts, rtol=1e-5, atol=1e-6)


def test_freeze_policy_and_head_param_names():
    model = MODELS.build(model_config())
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all('.visual.' in n and 'merger' not in n for n in frozen)
    assert any('visual.merger' in n for n, p in model.named_parameters() if p.requires_grad)
    head_params = [n for n, _ in model.named_parameters() if n.startswith('heads.')]
    assert head_params and all('heads' not in n for n, _ in model.backbone.named_parameters())
    assert not any(n.startswith('_teacher') for n in model.state_dict())    # the teacher is not saved


def test_lora_keeps_geometry_tokens_and_merger_trainable():
    cfg = model_config('Qwen3VLBackbone')
    cfg['backbone']['lora'] = dict(r=4, lora_alpha=8)
    model = MODELS.build(cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any('lora_A' in n for n in trainable) and any('visual.merger' in n for n in trainable)
    assert any('token_adapter' in n or 'trainable_tokens' in n for n in trainable)
    assert not any(n.endswith('q_proj.base_layer.weight') for n in trainable)
    data = model.data_preprocessor([make_sample(0)], True)
    losses = model(**data, mode='loss')
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()


def test_gradient_checkpointing_with_taps_gives_the_same_loss_and_gradients():
    """The paper configs checkpoint the decoder layers; the objectives tap their outputs: recomputation in the
    backward must not change the taps, the losses or any gradient."""
    from geokit.registry import MODELS

    from .conftest import make_sample, model_config

    results = []
    for checkpointing in (False, True):
        cfg = model_config()
        cfg['backbone']['gradient_checkpointing'] = checkpointing
        torch.manual_seed(0)
        model = MODELS.build(cfg).train()
        data = model.data_preprocessor([make_sample(0), make_sample(1)], True)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if k.startswith('loss_'))
        total.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append(({k: v.detach() for k, v in losses.items()}, grads))
    (plain_losses, plain_grads), (ckpt_losses, ckpt_grads) = results
    assert model.backbone.hf_model.is_gradient_checkpointing
    assert set(plain_losses) == set(ckpt_losses) and {'loss_pose', 'loss_depth', 'loss_align'} <= set(plain_losses)
    for key, value in plain_losses.items():
        torch.testing.assert_close(ckpt_losses[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert set(plain_grads) == set(ckpt_grads) and len(plain_grads) > 10
    for name, grad in plain_grads.items():
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_backbone_registers_every_module_once():
    """The decoder layers are reached through the stock model only (an alias would double the state-dict keys and
    make FSDP's auto-wrap visit each layer twice: 'already wrapped' at the paper widths)."""
    from geokit.registry import MLLMS
    backbone = MLLMS.build(dict(type='Qwen3VLBackbone', path='geokit://mllms/tiny-qwen3vl', load_weights=False))
    names = [name for name, _ in backbone.named_modules(remove_duplicate=False)]
    assert len(names) == len(set(id(m) for _, m in backbone.named_modules(remove_duplicate=False)))
    assert backbone.decoder_layers is backbone.hf_model.model.language_model.layers
