"""GeoVR's frame handling: every frame given twice (one temporal token per frame), teacher sees the MLLM's pixels."""
from __future__ import annotations

import torch

from geokit.models.teachers.preprocess import frames_from_processor
from geokit.registry import MODELS

from .conftest import NUM_FRAMES, make_sample, model_config


def test_repeated_frames_give_one_temporal_token_per_frame():
    cfg = model_config(objectives=('pose', 'depth', 'align'))
    cfg['data_preprocessor'] = dict(type='QwenVLDataPreprocessor', repeat_frames=2, teacher_frames='processor')
    model = MODELS.build(cfg)
    assert all(head.frames_per_token == 1 for head in model.heads.values())
    samples = [make_sample(0), make_sample(1)]
    data = model.data_preprocessor(samples, True)
    inputs = data['inputs']
    assert inputs['video_grid_thw'][:, 0].tolist() == [NUM_FRAMES, NUM_FRAMES]        # T temporal tokens
    ids = model.backbone.geometry_token_ids
    assert int((inputs['input_ids'] == ids['camera']).sum()) == 2 * NUM_FRAMES
    # the teacher's frames are the processor's pixels; at this size it does not resize, so they are the input
    assert torch.equal(data['data_samples']['frames'], torch.stack([s['frames'] for s in samples]))
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for k, v in losses.items() if k.startswith('loss_'))
    with torch.no_grad():
        out = model(**data, mode='tensor')
    assert out.predictions['pose']['pose_enc'].shape == (2, NUM_FRAMES, 9)
    assert out.taps.camera[model.taps['pose'].layers[0]].shape[1] == NUM_FRAMES


def test_frames_from_processor_inverts_the_patches():
    model = MODELS.build(model_config(objectives=()))
    processor = model.backbone.processor
    frames = make_sample(3, num_frames=3, size=64)['frames']                # odd count: the processor pads
    frames = torch.cat([frames, frames[:, :, :32]], 2)                      # 64 x 96
    batch = processor(text=['<|vision_start|><|video_pad|><|vision_end|>'], videos=[frames], return_tensors='pt',
                      video_metadata=[{'fps': 2.0, 'frames_indices': [0, 1, 2], 'total_num_frames': 3}])
    recovered = frames_from_processor(batch['pixel_values_videos'], batch['video_grid_thw'],
                                      processor.video_processor, [3])
    assert len(recovered) == 1 and torch.equal(recovered[0], frames)
    doubled = frames.repeat_interleave(2, 0)
    batch = processor(text=['<|vision_start|><|video_pad|><|vision_end|>'], videos=[doubled], return_tensors='pt',
                      video_metadata=[{'fps': 2.0, 'frames_indices': [0, 0, 1, 1, 2, 2], 'total_num_frames': 3}])
    assert batch['video_grid_thw'][0, 0] == 3
    recovered = frames_from_processor(batch['pixel_values_videos'], batch['video_grid_thw'],
                                      processor.video_processor, [3], repeat=2)
    assert torch.equal(recovered[0], frames)


def test_first_frame_camera_token_has_its_own_embedding():
    cfg = model_config(objectives=('pose',))
    cfg['backbone']['geometry_tokens'] = dict(camera='<|geo_camera|>', scale='<|geo_scale|>',
                                              camera_first='<|geo_camera_first|>')
    model = MODELS.build(cfg)
    ids = model.backbone.geometry_token_ids
    assert len(set(ids.values())) == 3
    data = model.data_preprocessor([make_sample(0), make_sample(1)], True)
    input_ids = data['inputs']['input_ids']
    groups = NUM_FRAMES // model.backbone.frames_per_token
    for row in input_ids:
        cameras = row[torch.isin(row, torch.tensor([ids['camera'], ids['camera_first']]))].tolist()
        assert cameras == [ids['camera_first']] + [ids['camera']] * (groups - 1)
    with torch.no_grad():
        out = model(**data, mode='tensor')
    assert out.taps.camera[model.taps['pose'].layers[0]].shape[:2] == (2, groups)
    # the first camera token's position is still its frame's last patch
    positions, _ = model.backbone.geometry_position_ids(input_ids, data['inputs']['attention_mask'],
                                                        data['inputs']['mm_token_type_ids'],
                                                        data['inputs']['video_grid_thw'])
    first = int((input_ids[0] == ids['camera_first']).nonzero())
    assert positions[:, 0, first].tolist() == positions[:, 0, first - 1].tolist()
    losses = model(**data, mode='loss')
    losses['loss_pose'].backward()
    grad = model.backbone.hf_model.get_input_embeddings().weight.grad
    assert grad[ids['camera_first']].abs().sum() > 0 and grad[ids['camera']].abs().sum() > 0
