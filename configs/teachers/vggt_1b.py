# The official VGGT-1B as a frozen teacher. Point `load_from` at a local copy of facebook/VGGT-1B (a directory with
# model.safetensors); nothing is downloaded. Features: the four layers GeoVR distils (frame and global halves).
teacher = dict(
    type='VGGTTeacher',
    load_from='checkpoints/VGGT-1B',
    image_size=518,
    mode='crop',
    feature_layers=[4, 11, 17, 23],
    feature_part='both',
    with_points=False,
    frames_chunk_size=8,
)
