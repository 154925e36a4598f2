"""lmms-eval's ``vsibench`` task on a local SynthVSI copy: lmms-eval's own prompt, scoring and aggregation.

Only where the videos come from differs: ``<GEOKIT_SYNTHVSI_ROOT>/<video>`` (default ``data/synthvsi``, relative to
the working directory), where the hub task reads ``$HF_HOME/vsibench/<dataset>/<scene_name>.mp4``.
"""
import os

from lmms_eval.tasks.vsibench.utils import (  # noqa: F401  (the task yaml refers to these by name)
    vsibench_aggregate_obj_appearance_order_accuracy,
    vsibench_aggregate_object_abs_distance_mra,
    vsibench_aggregate_object_counting_mra,
    vsibench_aggregate_object_rel_direction_accuracy,
    vsibench_aggregate_object_rel_distance_accuracy,
    vsibench_aggregate_object_size_estimation_mra,
    vsibench_aggregate_overall,
    vsibench_aggregate_room_size_estimation_mra,
    vsibench_aggregate_route_planning_accuracy,
    vsibench_doc_to_text,
    vsibench_process_results,
)

ROOT_VARIABLE = 'GEOKIT_SYNTHVSI_ROOT'


def synthvsi_doc_to_visual(doc):
    """The SynthVSI video of a test question, ``[path]``."""
    path = os.path.join(os.environ.get(ROOT_VARIABLE, 'data/synthvsi'), doc['video'])
    if not os.path.isfile(path):
        raise FileNotFoundError(f'SynthVSI video {path} not found: run from the geokit repository root after '
                                f'tools/make_synthvsi.py, or set {ROOT_VARIABLE} to the SynthVSI folder.')
    return [path]
