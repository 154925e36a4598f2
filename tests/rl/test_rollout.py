"""Rollout helpers and advantages: group layout, completion masks, seeded sampling, zero-variance filter."""
from __future__ import annotations

import torch

from geokit.rl import completion_mask, group_advantages, nonzero_variance_groups, repeat_batch, seeded_sampling
from geokit.rl.advantages import group_reward_std


def test_completion_mask_keeps_up_to_the_first_end_of_turn():
    ids = torch.tensor([[5, 9, 2, 9], [9, 1, 1, 1], [3, 4, 5, 6]])
    assert completion_mask(ids, eos_token_id=9).tolist() == [[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]]


def test_repeat_batch_repeats_each_video_and_sample_consecutively():
    grid = torch.tensor([[1, 2, 2], [2, 2, 2]])                        # 4 and 8 patches
    pixels = torch.arange(12).float()[:, None]
    inputs = dict(input_ids=torch.tensor([[1, 2], [3, 4]]), attention_mask=torch.ones(2, 2),
                  mm_token_type_ids=torch.zeros(2, 2), video_grid_thw=grid, pixel_values_videos=pixels,
                  geometry_tokens=False)
    samples = dict(frames=torch.arange(2)[:, None], meta=[{'id': 0}, {'id': 1}], geometry=[None, None])
    out, out_samples = repeat_batch(inputs, samples, 3)
    assert out['input_ids'][:, 0].tolist() == [1, 1, 1, 3, 3, 3]
    assert out['video_grid_thw'].tolist() == [[1, 2, 2]] * 3 + [[2, 2, 2]] * 3
    expected = [list(range(4))] * 3 + [list(range(4, 12))] * 3
    assert out['pixel_values_videos'].squeeze(1).tolist() == [float(v) for part in expected for v in part]
    assert [m['id'] for m in out_samples['meta']] == [0, 0, 0, 1, 1, 1]
    assert out_samples['frames'].squeeze(1).tolist() == [0, 0, 0, 1, 1, 1]
    out_samples['meta'][0]['id'] = 7
    assert samples['meta'][0]['id'] == 0                                 # copies, not aliases


def test_seeded_sampling_is_reproducible_and_restores_the_global_state():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    with seeded_sampling(11):
        first = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), before)
    with seeded_sampling(11):
        assert torch.equal(torch.rand(4), first)


def test_group_advantages_and_filter():
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5])
    advantages = group_advantages(rewards, 4)
    assert torch.allclose(advantages[:4].sum(), torch.tensor(0.0), atol=1e-6)
    assert torch.all(advantages[4:] == 0)                                # tied group: no signal, no NaN
    assert nonzero_variance_groups(rewards, 4).tolist() == [True] * 4 + [False] * 4
    assert torch.allclose(group_reward_std(rewards, 4)[:4], rewards[:4].std())
    assert torch.allclose(group_advantages(rewards, 4, scale='none'), rewards - torch.tensor([0.5] * 8))


def test_grpo_report_averages_windows_and_lists_scores():
    from geokit.rl.report import format_grpo_report, windowed_means
    assert windowed_means([1, 2, 3, 4, 5], 2) == [1.5, 3.5, 5.0]
    text = format_grpo_report({'reward': [0.0, 1.0, 1.0]}, 2, {'overall': 20.0}, {'overall': 25.5})
    assert '| 1-2 | 0.500 |' in text and '| 3-3 | 1.000 |' in text and '| overall | 20.0 | 25.5 |' in text
