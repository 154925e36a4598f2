"""Geometry core: pose encoding, projection, scale alignment, pose/depth metrics and voxel coverage.

Conventions: OpenCV camera-from-world extrinsics ``(..., 3, 4)``, pixel intrinsics ``(..., 3, 3)``, quaternions
XYZW, pose encoding ``[t (3), quaternion XYZW (4), fov_h, fov_w]`` (VGGT).
"""
from .metrics import (
    depth_abs_rel,
    depth_delta1,
    pose_auc,
    relative_pose_errors,
    rotation_angle_deg,
    translation_angle_deg,
)
from .pose_encoding import (
    closed_form_inverse_se3,
    compose_se3,
    extrinsics_intrinsics_to_pose_encoding,
    normalize_to_first_frame,
    pose_encoding_to_extrinsics_intrinsics,
    quaternion_xyzw_to_rotation_matrix,
    rotation_matrix_to_quaternion_xyzw,
)
from .projection import camera_to_world_points, depth_to_camera_points, depth_to_world_points, project_points
from .scale import align_depth_scale
from .voxels import frame_voxel_sets, voxelize_points

__all__ = [
    'align_depth_scale', 'camera_to_world_points', 'closed_form_inverse_se3', 'compose_se3', 'depth_abs_rel',
    'depth_delta1', 'depth_to_camera_points', 'depth_to_world_points', 'extrinsics_intrinsics_to_pose_encoding',
    'frame_voxel_sets', 'normalize_to_first_frame', 'pose_auc', 'pose_encoding_to_extrinsics_intrinsics',
    'project_points', 'quaternion_xyzw_to_rotation_matrix', 'relative_pose_errors', 'rotation_angle_deg',
    'rotation_matrix_to_quaternion_xyzw', 'translation_angle_deg', 'voxelize_points',
]
