"""Datasets: SynthVSI generator, VSI-Bench / VSI-590K readers, frame samplers, the VSI-Bench prompt."""
from .collate import geometry_collate, list_collate
from .distinct_videos import distinct_videos
from .frame_samplers import FPSSampler, UniformSampler
from .prompts import MCA_QUESTION_TYPES, NA_QUESTION_TYPES, build_vsibench_prompt
from .space_aware_sampler import SpaceAwareSampler  # noqa: F401  (registers FRAME_SAMPLERS SpaceAwareSampler)
from .synthvsi import SynthVSIParams, ensure_synthvsi, make_synthvsi
from .video_io import VideoReadError, probe_video, read_video_frames, write_video
from .vsi_datasets import VSI590KDataset, VSIBenchDataset

__all__ = ['geometry_collate', 'list_collate', 'FPSSampler', 'UniformSampler', 'MCA_QUESTION_TYPES',
           'NA_QUESTION_TYPES',
           'build_vsibench_prompt',
           'SynthVSIParams', 'ensure_synthvsi', 'make_synthvsi', 'VideoReadError', 'probe_video',
           'read_video_frames', 'write_video', 'VSI590KDataset', 'VSIBenchDataset', 'distinct_videos']
