"""Geometry tokens move no other token's RoPE position (``geometry_positions='frame_last_patch'``)."""
from __future__ import annotations

import pytest
import torch

from geokit.registry import MODELS

from .conftest import make_sample, model_config


def _batch(model, training: bool, with_geometry: bool) -> dict:
    pre = model.data_preprocessor
    pre.insert_geometry_tokens, pre.geometry_tokens_in_predict = with_geometry, True
    samples = [make_sample(0), make_sample(1, num_frames=6)]        # different lengths -> padded rows
    return pre(samples, training)['inputs']


def _positions(model, inputs: dict) -> torch.Tensor:
    backbone = model.backbone
    if inputs['geometry_tokens']:
        return backbone.geometry_position_ids(inputs['input_ids'], inputs['attention_mask'],
                                              inputs['mm_token_type_ids'], inputs['video_grid_thw'],
                                              inputs.get('second_per_grid_ts'))[0]
    return backbone.hf_model.model.get_rope_index(
        inputs['input_ids'], mm_token_type_ids=inputs['mm_token_type_ids'], attention_mask=inputs['attention_mask'],
        **backbone.rope_kwargs(inputs['video_grid_thw'], inputs.get('second_per_grid_ts'), False))[0]


@pytest.mark.parametrize('training', [True, False], ids=['right_padding', 'left_padding'])
@pytest.mark.parametrize('backbone', ['Qwen3VLBackbone', 'Qwen25VLBackbone'])
def test_geometry_tokens_leave_every_other_position_unchanged(backbone, training):
    model = MODELS.build(model_config(backbone, objectives=()))
    plain, geo = _batch(model, training, False), _batch(model, training, True)
    assert plain['attention_mask'][:, 0].tolist() != plain['attention_mask'][:, -1].tolist()   # padding present
    ids = model.backbone.geometry_token_ids
    is_geo = torch.isin(geo['input_ids'], torch.tensor(list(ids.values())))
    pos_plain, pos_geo = _positions(model, plain), _positions(model, geo)
    video = model.backbone.video_token_id
    for row in range(2):
        real = plain['attention_mask'][row].bool()
        keep = geo['attention_mask'][row].bool() & ~is_geo[row]
        # the same tokens in the same order, with identical (t, h, w) positions: video tokens and the text after
        assert torch.equal(plain['input_ids'][row][real], geo['input_ids'][row][keep])
        torch.testing.assert_close(pos_plain[:, row][:, real], pos_geo[:, row][:, keep], rtol=0, atol=0)
        assert bool((geo['input_ids'][row][keep] == video).any())
        # each camera token sits at its frame's last patch; the scale token at the last camera token's position
        cams = (geo['input_ids'][row] == ids['camera']).nonzero().flatten()
        assert cams.numel() > 1
        for at in cams.tolist():
            assert geo['input_ids'][row, at - 1] == video
            assert pos_geo[:, row, at].tolist() == pos_geo[:, row, at - 1].tolist()
        scale = int((geo['input_ids'][row] == ids['scale']).nonzero())
        assert pos_geo[:, row, scale].tolist() == pos_geo[:, row, cams[-1]].tolist()
        # padding keeps the stock value (0)
        assert (pos_geo[:, row][:, ~geo['attention_mask'][row].bool()] == 0).all()


@pytest.mark.parametrize('backbone', ['Qwen3VLBackbone', 'Qwen25VLBackbone'])
def test_consecutive_text_policy_shifts_later_positions(backbone):
    """The legacy option really is different: the text after the video moves by the inserted tokens."""
    cfg = model_config(backbone, objectives=())
    cfg['backbone']['geometry_positions'] = 'consecutive_text'
    model = MODELS.build(cfg)
    geo = _batch(model, True, True)
    backbone_ = model.backbone
    legacy = backbone_.hf_model.model.get_rope_index(
        geo['input_ids'], mm_token_type_ids=geo['mm_token_type_ids'], attention_mask=geo['attention_mask'],
        **backbone_.rope_kwargs(geo['video_grid_thw'], geo.get('second_per_grid_ts'), True))[0]
    fixed = backbone_.geometry_position_ids(geo['input_ids'], geo['attention_mask'], geo['mm_token_type_ids'],
                                            geo['video_grid_thw'], geo.get('second_per_grid_ts'))[0]
    last = int(geo['attention_mask'][0].sum()) - 1
    assert legacy[0, 0, last] > fixed[0, 0, last]
    with pytest.raises(ValueError, match='geometry_positions'):
        cfg['backbone']['geometry_positions'] = 'shifted'
        MODELS.build(cfg)


@pytest.mark.parametrize('backbone', ['Qwen3VLBackbone', 'Qwen25VLBackbone'])
def test_forward_uses_the_unshifted_positions(backbone):
    """The tapped forward equals the stock model run with the explicit positions; answers' logits differ from
    the legacy positions (so the positions reach the model)."""
    torch.manual_seed(0)
    model = MODELS.build(model_config(backbone, objectives=())).eval()
    data = model.data_preprocessor([make_sample(0), make_sample(1)], True)
    inputs = data['inputs']
    with torch.no_grad():
        out = model(**data, mode='tensor')
        rope = model.backbone.position_kwargs(inputs['input_ids'], inputs['attention_mask'],
                                              inputs['mm_token_type_ids'], inputs['video_grid_thw'],
                                              inputs.get('second_per_grid_ts'), True)
        ref = model.backbone.hf_model(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'],
                                      mm_token_type_ids=inputs['mm_token_type_ids'],
                                      pixel_values_videos=inputs['pixel_values_videos'],
                                      **{k: v for k, v in rope.items() if v is not None})
        model.backbone.geometry_positions = 'consecutive_text'
        legacy = model(**data, mode='tensor')
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(out.logits, legacy.logits, atol=1e-4)


@pytest.mark.parametrize('backbone', ['Qwen3VLBackbone', 'Qwen25VLBackbone'])
def test_generation_with_geometry_tokens_continues_from_the_unshifted_positions(backbone):
    """A left-padded prompt with geometry tokens: generate's first two tokens are the greedy tokens of a forward
    over the prompt (and the prompt + first token) with the unshifted positions."""
    torch.manual_seed(0)
    model = MODELS.build(model_config(backbone, objectives=())).eval()
    inputs = _batch(model, False, True)
    bb = model.backbone
    kwargs = dict(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'],
                  mm_token_type_ids=inputs['mm_token_type_ids'], pixel_values_videos=inputs['pixel_values_videos'],
                  **{k: v for k, v in bb.rope_kwargs(inputs['video_grid_thw'], inputs.get('second_per_grid_ts'),
                                                     True).items() if v is not None})
    with torch.no_grad():
        generated = bb.generate(**kwargs, max_new_tokens=2, do_sample=False, pad_token_id=bb.pad_token_id)
        first = generated[:, inputs['input_ids'].shape[1]]
        vision = bb.encode_video(inputs['pixel_values_videos'], inputs['video_grid_thw'])
        hidden = bb.language_forward(inputs['input_ids'], inputs['attention_mask'], inputs['mm_token_type_ids'],
                                     inputs['video_grid_thw'], vision, inputs.get('second_per_grid_ts'), True)
        assert torch.equal(bb.lm_logits(hidden[:, -1]).argmax(-1), first)
        ids = torch.cat([inputs['input_ids'], first[:, None]], 1)
        mask = torch.cat([inputs['attention_mask'], torch.ones_like(first[:, None])], 1)
        types = torch.cat([inputs['mm_token_type_ids'], torch.zeros_like(first[:, None])], 1)
        hidden = bb.language_forward(ids, mask, types, inputs['video_grid_thw'], vision,
                                     inputs.get('second_per_grid_ts'), True)
        assert torch.equal(bb.lm_logits(hidden[:, -1]).argmax(-1), generated[:, -1])
