# SynthVSI, the embedded default dataset: generated under `data_root` on first use (no download), read by the same
# VSI-590K (train) / VSI-Bench (test) readers as the real data. The test split doubles as the validation run at the
# end of training; scoring follows the official VSI-Bench rules.
data_root = 'data/synthvsi'
synthvsi = dict(num_scenes=32, frames=16, resolution=(112, 112), seed=0)
num_frames = 8
frame_sampler = dict(type='UniformSampler', num_frames=num_frames)

train_dataloader = dict(
    batch_size=2, num_workers=0, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='VSI590KDataset', ann_file='train.jsonl', data_root=data_root, generate_if_missing=synthvsi,
                 frame_sampler=frame_sampler, load_geometry=True))
test_dataloader = dict(
    batch_size=4, num_workers=0, collate_fn=dict(type='geokit.list_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VSIBenchDataset', ann_file='test.jsonl', data_root=data_root, generate_if_missing=synthvsi,
                 frame_sampler=frame_sampler, load_geometry=True))
# scored by the 2024 official rules, with the answer-prior baseline fitted on the training annotations beside it
test_evaluator = dict(type='VSIBenchMetric', mode='official-2024', prior_ann_file='train.jsonl')
test_cfg = dict(type='TestLoop')
val_dataloader = test_dataloader
val_evaluator = test_evaluator
val_cfg = dict(type='ValLoop')
