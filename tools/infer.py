"""Ask a trained model a question about a video; print the answer.

    python tools/infer.py projects/geovr/config.py work_dirs/geovr/config/iter_300.safetensors \\
        --video data/synthvsi/test/scene_00028/video.mp4 --question "How many chairs are in this room?"
    # the VSI-Bench prompt of a question type (what the model was trained and scored on)
    python tools/infer.py CONFIG CKPT --video V.mp4 --question "Which is closer to the sofa?" \\
        --question-type object_rel_distance --options "A. lamp" "B. table" "C. bed" "D. chair"
    # GeoVR: also render what the heads predict (depth + cameras) as a picture
    python tools/infer.py CONFIG CKPT --video V.mp4 --question "..." --geometry work_dirs/infer/geometry.png
    # an exported checkpoint (tools/export_hf.py) works the same way
    python tools/infer.py CONFIG exported/ --video V.mp4 --question "..."

CKPT is a training checkpoint (.safetensors) or an exported directory. The frames are chosen by the config's
test-dataset frame sampler from the video's own frame count and frame rate.
"""
from __future__ import annotations

import argparse

from mmengine.config import DictAction

from geokit.inference import (
    generate_answers,
    load_config,
    load_model,
    model_frame_sampler,
    question_prompt,
    render_predicted_geometry,
    video_sample,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Answer a question about a video with a trained geokit model.')
    parser.add_argument('config', help='the training config')
    parser.add_argument('checkpoint', help='training checkpoint (.safetensors) or exported directory')
    parser.add_argument('--video', required=True, help='video file (mp4, ...)')
    parser.add_argument('--question', required=True, help='the question')
    parser.add_argument('--question-type', help='wrap the question in the VSI-Bench prompt of this question type')
    parser.add_argument('--options', nargs='+', help='multiple-choice options, e.g. "A. chair" "B. table"')
    parser.add_argument('--geometry', metavar='PNG', help="GeoVR: render the heads' depth and cameras to this PNG")
    parser.add_argument('--backend', choices=['auto', 'open3d', 'matplotlib'], default='auto',
                        help='renderer for --geometry')
    parser.add_argument('--max-new-tokens', type=int, help='generation length (default: the config)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    options = dict(args.cfg_options or {})
    if args.max_new_tokens is not None:
        options['model.max_new_tokens'] = args.max_new_tokens
    cfg = load_config(args.config, options)
    model = load_model(cfg, args.checkpoint, predict_geometry=bool(args.geometry), device=args.device)
    sample = video_sample(args.video, question_prompt(args.question, args.question_type, args.options),
                          model_frame_sampler(cfg))
    output = generate_answers(model, [sample])[0]
    print(output['prediction'])
    if args.geometry:
        backend = render_predicted_geometry(sample, output['geometry_pred'], args.geometry, backend=args.backend)
        print(f'geometry ({backend}): {args.geometry}')
    return output


if __name__ == '__main__':
    main()
