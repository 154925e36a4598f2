"""VSI-Bench prompts in one place for datasets and evaluation: the official one (thinking-in-space lmms-eval task,
the default) and GeoVR's own (``eval_vsi.py``), for comparing with GeoVR's table."""
from __future__ import annotations

from collections.abc import Mapping

#: Multiple-choice question types (answer: option letter, scored by exact match).
MCA_QUESTION_TYPES = ('object_rel_direction_easy', 'object_rel_direction_medium', 'object_rel_direction_hard',
                      'object_rel_distance', 'route_planning', 'obj_appearance_order')
#: Numerical-answer question types (answer: a number, scored by mean relative accuracy).
NA_QUESTION_TYPES = ('object_abs_distance', 'object_counting', 'object_size_estimation', 'room_size_estimation')

PRE_PROMPT = 'These are frames of a video.'
MCA_POST_PROMPT = "Answer with the option's letter from the given choices directly."
NA_POST_PROMPT = 'Please answer the question using a single word or phrase.'


def build_vsibench_prompt(item: Mapping) -> str:
    """The text VSI-Bench shows a model for one test item (without any video placeholder).

    Numerical questions: ``pre_prompt \\n question \\n na_post_prompt``; multiple choice:
    ``pre_prompt \\n question \\n Options:\\n A. ..\\n B. .. \\n mca_post_prompt``.

    Args:
        item: a VSI-Bench record with ``question_type``, ``question`` and (multiple choice) ``options``.
    Raises:
        ValueError: unknown ``question_type`` (lists the known ones).
    """
    question_type = item['question_type']
    if question_type in NA_QUESTION_TYPES:
        return '\n'.join([PRE_PROMPT, item['question'], NA_POST_PROMPT])
    if question_type in MCA_QUESTION_TYPES:
        options = 'Options:\n' + '\n'.join(item['options'])
        return '\n'.join([PRE_PROMPT, item['question'], options, MCA_POST_PROMPT])
    raise ValueError(f'Unknown VSI-Bench question_type {question_type!r}; known: '
                     f'{", ".join(MCA_QUESTION_TYPES + NA_QUESTION_TYPES)}.')


GEOVR_MCA_POST_PROMPT = "Answer with ONLY the option's letter directly."
GEOVR_NA_POST_PROMPT = 'Please answer the question ONLY using a single Arabic numeral.'


def build_geovr_prompt(item: Mapping) -> str:
    """GeoVR's VSI-Bench prompt (``process_chunk`` in ``eval_vsi.py``): no pre-prompt, no ``Options:`` line.

    Numerical questions: ``question \n na_post_prompt``; multiple choice: ``question \n A. .. \n B. .. \n
    mca_post_prompt``.
    """
    question_type = item['question_type']
    if question_type in NA_QUESTION_TYPES:
        return '\n'.join([item['question'], GEOVR_NA_POST_PROMPT])
    if question_type in MCA_QUESTION_TYPES:
        return '\n'.join([item['question'], *item['options'], GEOVR_MCA_POST_PROMPT])
    return build_vsibench_prompt(item)  # raises with the known types


#: Prompt styles by name (``VSIBenchDataset(prompt_style=...)``).
PROMPT_STYLES = {'official': build_vsibench_prompt, 'geovr': build_geovr_prompt}
