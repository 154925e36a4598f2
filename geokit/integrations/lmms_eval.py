"""A geokit model for lmms-eval: any ``GeometricMLLM`` checkpoint (fusion models included) on any lmms-eval task.

Registered through lmms-eval's plugin mechanism, the ``lmms_eval.models`` entry-point group (``setup.py``; active
after ``pip install -e ".[eval]"``)::

    python -m lmms_eval --model geokit \\
        --model_args config=projects/geovr/config.py,checkpoint=work_dirs/geovr/config/iter_300.safetensors \\
        --tasks vsibench --batch_size 1

``checkpoint`` is a training checkpoint or an exported directory (:func:`geokit.inference.load_model`). The model
answers ``generate_until`` requests with greedy decoding on the video each document's ``doc_to_visual`` gives, framed
by the config's test-dataset frame sampler, the prompt being ``<video>\\n`` + the task's text (for ``vsibench`` the
official VSI-Bench prompt, the same geokit's own datasets build). Likelihood requests are not supported (geokit's
models generate).

A local copy of the ``vsibench`` task on SynthVSI lives in ``geokit/integrations/lmms_eval_tasks``
(``--include_path``; see docs/evaluation.md).
"""
from __future__ import annotations

import os.path as osp

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from mmengine.logging import print_log

from geokit.inference import generate_answers, load_config, load_model, model_frame_sampler, video_sample

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.webm')
#: The local lmms-eval tasks (``--include_path``).
TASKS_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'lmms_eval_tasks')


class GeokitLMM(lmms):
    """lmms-eval's simple-model interface around a geokit checkpoint.

    Args (lmms-eval ``--model_args``):
        config: the training config of the checkpoint.
        checkpoint: training checkpoint (``.safetensors``) or exported directory.
        device: ``'cpu'`` or ``'cuda'``.
        batch_size: requests per generation batch.
        max_new_tokens: generation length when a task gives none (default: the config's ``model.max_new_tokens``).
    """

    def __init__(self, config: str, checkpoint: str, device: str = 'cpu', batch_size: int | str = 1,
                 max_new_tokens: int | None = None, **kwargs) -> None:
        super().__init__()
        if kwargs:
            raise TypeError(f'geokit model: unknown model_args {sorted(kwargs)}; known: config, checkpoint, device, '
                            f'batch_size, max_new_tokens.')
        cfg = load_config(config)
        self.model = load_model(cfg, checkpoint, device=device)
        self.frame_sampler = model_frame_sampler(cfg)
        self.batch_size = int(batch_size)
        self.default_max_new_tokens = int(max_new_tokens or self.model.max_new_tokens)

    def _sample(self, request: Instance) -> dict:
        context, _, doc_to_visual, doc_id, task, split = request.args
        visuals = doc_to_visual(self.task_dict[task][split][doc_id]) or []
        videos = [v for v in visuals if isinstance(v, str) and v.lower().endswith(VIDEO_SUFFIXES)]
        if len(videos) != 1 or len(visuals) != 1:
            raise ValueError(f'geokit models answer about one video per question; task {task!r} document {doc_id} '
                             f'gives {len(visuals)} visual(s) ({[type(v).__name__ for v in visuals]}).')
        return video_sample(videos[0], context.replace('<image>', '').strip(), self.frame_sampler,
                            meta=dict(id=f'{task}/{doc_id}'))

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Greedy answers; each stops at the first of the request's ``until`` strings."""
        answers: list[str] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start:start + self.batch_size]
            gen_kwargs = chunk[0].args[1]
            if gen_kwargs.get('do_sample') or (gen_kwargs.get('temperature') or 0) > 0:
                print_log('geokit model: decoding greedily (sampling settings of the task are ignored).',
                          logger='current', level=30)
            self.model.max_new_tokens = int(gen_kwargs.get('max_new_tokens') or self.default_max_new_tokens)
            outputs = generate_answers(self.model, [self._sample(request) for request in chunk],
                                       batch_size=len(chunk))
            for request, output in zip(chunk, outputs):
                until = request.args[1].get('until') or []
                text = output['prediction']
                for stop in [until] if isinstance(until, str) else until:
                    if stop:
                        text = text.split(stop)[0]
                answers.append(text)
        return answers

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError('The geokit lmms-eval model generates answers; loglikelihood tasks are not '
                                  'supported.')

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError('The geokit lmms-eval model answers single-turn questions only.')


def manifest():
    """The entry point of the ``lmms_eval.models`` group: geokit's model manifest (model id ``geokit``)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id='geokit', simple_class_path='geokit.integrations.lmms_eval.GeokitLMM')
