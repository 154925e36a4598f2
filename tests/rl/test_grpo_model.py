"""GeometricMLLM generation (generation_cfg, generate_ids, completion_logps) and one GRPOGeometricMLLM step."""
from __future__ import annotations

import pytest
import torch
from mmengine.registry import init_default_scope

from geokit.engine.checkpoint import save_checkpoint_safetensors
from geokit.registry import MODELS
from geokit.rl.rollout import completion_mask, repeat_batch, repeat_vision_outputs
from tests.models.conftest import make_sample, model_config

QUESTION_TYPES = {'3': 'object_counting', '12.5': 'room_size_estimation'}


def _samples(n: int = 2) -> list[dict]:
    samples = [make_sample(i) for i in range(n)]
    for sample in samples:
        sample['meta']['question_type'] = QUESTION_TYPES[sample['meta']['ground_truth']]
    return samples


def _grpo_config(backbone: str = 'Qwen3VLBackbone', **grpo) -> dict:
    settings = dict(group_size=4, max_new_tokens=4, rewards=[dict(type='VSIAccuracyReward'),
                                                             dict(type='FormatReward', mode='bare', weight=0.5)])
    settings.update(grpo)
    return model_config(backbone, objectives=(), teacher=None, type='GRPOGeometricMLLM', grpo=settings)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('geokit')


def _prompts(model, samples):
    data = model.data_preprocessor(samples, training=False)
    return data['inputs'], data['data_samples']


def test_generation_cfg_defaults_to_greedy_and_overrides_apply():
    model = MODELS.build(model_config(objectives=(), teacher=None)).eval()
    assert model.generation_cfg == dict(do_sample=False, num_beams=1, max_new_tokens=4)
    inputs, samples = _prompts(model, _samples())
    greedy = model.generate_ids(inputs, samples)
    assert greedy.shape[0] == 2 and greedy.shape[1] <= 4
    assert torch.equal(greedy, model.generate_ids(inputs, samples))
    assert model.generate_ids(inputs, samples, max_new_tokens=2).shape[1] <= 2
    texts = [out['prediction'] for out in model.predict(inputs, samples)]
    decoded = model.backbone.processor.tokenizer.batch_decode(greedy, skip_special_tokens=True)
    assert texts == [text.strip() for text in decoded]
    sampled = MODELS.build(model_config(objectives=(), teacher=None, generation_cfg=dict(
        do_sample=True, temperature=0.7, top_p=0.8, top_k=20)))
    assert sampled.generation_cfg['temperature'] == 0.7 and sampled.generation_cfg['max_new_tokens'] == 4
    with pytest.raises(ValueError, match='eos_token_id'):
        MODELS.build(model_config(objectives=(), teacher=None, generation_cfg=dict(eos_token_id=3)))


@pytest.mark.parametrize('backbone,geometry', [('Qwen3VLBackbone', False), ('Qwen25VLBackbone', True)])
def test_completion_logps_equal_the_generation_scores(backbone, geometry):
    """The log-probs GRPO trains on are those of the distribution generate() sampled from (same tokens, same
    positions), with the prompt's geometry tokens in both when the prompt has them."""
    model = MODELS.build(model_config(backbone, objectives=(), teacher=None, data_preprocessor=dict(
        type='QwenVLDataPreprocessor', geometry_tokens_in_predict=geometry))).eval()
    inputs, samples = _prompts(model, _samples())
    assert bool(inputs['geometry_tokens']) == geometry
    rope = model.backbone.rope_kwargs(inputs['video_grid_thw'], inputs.get('second_per_grid_ts'), geometry)
    model.backbone.hf_model.model.rope_deltas = None
    out = model.backbone.generate(input_ids=inputs['input_ids'], attention_mask=inputs['attention_mask'],
                                  mm_token_type_ids=inputs['mm_token_type_ids'],
                                  pixel_values_videos=inputs['pixel_values_videos'],
                                  **{k: v for k, v in rope.items() if v is not None}, max_new_tokens=4,
                                  do_sample=False, output_logits=True, return_dict_in_generate=True,
                                  eos_token_id=-1, pad_token_id=model.backbone.pad_token_id)
    completion = out.sequences[:, inputs['input_ids'].shape[1]:]
    expected = torch.stack(out.logits, 1).float().log_softmax(-1).gather(-1, completion[..., None]).squeeze(-1)
    with torch.no_grad():
        logps = model.completion_logps(inputs, samples, completion, torch.ones_like(completion))
    torch.testing.assert_close(logps, expected, rtol=1e-4, atol=1e-4)


def test_grpo_step_logs_its_parts_and_trains_the_policy():
    model = MODELS.build(_grpo_config())
    data = model.data_preprocessor(_samples(), training=True)
    assert 'labels' not in data['inputs']                               # prompts only: GRPO samples the answers
    losses = model(**data, mode='loss')
    assert {'loss_grpo', 'reward', 'reward/accuracy', 'reward/format', 'reward_std', 'clip_fraction',
            'completion_length', 'groups_kept'} <= set(losses)
    assert 'kl' not in losses and model.reference is None              # beta 0: no reference kept
    assert 0 < losses['completion_length'] <= 4
    losses['loss_grpo'].backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert int(model.rollout_step) == 1


def test_rollouts_depend_on_the_step_not_on_the_global_rng():
    model = MODELS.build(_grpo_config(temperature=1.5))
    inputs, samples = _prompts(model, _samples())
    first = model.rollout(inputs, samples)['completion_ids']
    torch.manual_seed(123)                                                # unrelated randomness in between
    second = model.rollout(inputs, samples)['completion_ids']
    model.rollout_step.zero_()
    again = model.rollout(inputs, samples)['completion_ids']
    assert torch.equal(first, again)
    assert not torch.equal(first, second)
    assert not torch.isin(torch.cat([first, second]), torch.tensor(model.multimodal_token_ids)).any()
    mask = completion_mask(first, model.end_of_turn_id)
    assert torch.all(first[mask == 0] == model.backbone.pad_token_id)


def test_kl_reference_is_loaded_frozen_and_starts_at_zero(tmp_path):
    policy = MODELS.build(_grpo_config())
    path = str(tmp_path / 'sft.safetensors')
    save_checkpoint_safetensors({'state_dict': policy.state_dict(), 'meta': {}}, path)
    with pytest.raises(ValueError, match='reference_checkpoint'):
        MODELS.build(_grpo_config(loss=dict(type='GRPOPolicyLoss', beta=0.04)))
    model = MODELS.build(_grpo_config(loss=dict(type='GRPOPolicyLoss', beta=0.04), reference_checkpoint=path))
    model.load_state_dict(policy.state_dict())
    assert model.frozen['reference'] is None                              # built on first use, not for eval/export
    losses = model(**model.data_preprocessor(_samples(), training=True), mode='loss')
    assert losses['kl'].abs().item() < 1e-6                               # policy == reference at the start
    assert model.reference is not None and 'reference' not in ''.join(model.state_dict())
    assert not any(p.requires_grad for p in model.reference.parameters())
    model.to(torch.float64)                                               # moves with the policy, as teachers do
    assert next(model.reference.parameters()).dtype == torch.float64


def test_zero_variance_groups_are_dropped_from_the_loss():
    model = MODELS.build(_grpo_config(filter_zero_variance=True, rewards=[dict(type='FormatReward',
                                                                                mode='think_answer')]))
    losses = model(**model.data_preprocessor(_samples(), training=True), mode='loss')
    assert losses['groups_kept'].item() == 0.0                          # a tiny model never writes <think> tags
    assert losses['loss_grpo'].item() == 0.0
    losses['loss_grpo'].backward()                                        # still a graph (DDP needs one)


@pytest.mark.parametrize('backbone', ['Qwen3VLBackbone', 'Qwen25VLBackbone'])
def test_vision_once_per_prompt_equals_vision_per_completion(backbone):
    """Rollouts run the ViT once per prompt and repeat its tokens (Qwen3-VL's DeepStack features included)."""
    model = MODELS.build(model_config(backbone, objectives=(), teacher=None)).eval()
    inputs, samples = _prompts(model, _samples())
    group_inputs, group_samples = repeat_batch(inputs, samples, 3)
    completion = torch.randint(5, 50, (6, 3))
    mask = torch.ones_like(completion)
    with torch.no_grad():
        per_completion = model.completion_logps(group_inputs, group_samples, completion, mask)
        vision = repeat_vision_outputs(model.encode_vision(inputs, samples), 3)
        per_prompt = model.completion_logps(group_inputs, group_samples, completion, mask, vision=vision)
    torch.testing.assert_close(per_prompt, per_completion, rtol=1e-5, atol=1e-5)


def test_fixed_prompt_reward_is_a_function_of_the_weights():
    from geokit.rl.report import fixed_prompt_reward
    model = MODELS.build(_grpo_config(temperature=1.5))
    samples = _samples(3)
    model.rollout_step.fill_(5)
    first = fixed_prompt_reward(model, samples, batch_size=2)
    assert int(model.rollout_step) == 5                                  # the run's counter is untouched
    assert set(first) == {'reward', 'accuracy', 'format'}
    assert fixed_prompt_reward(model, samples, batch_size=2) == first
