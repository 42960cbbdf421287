# LSUN-256 real images for the evaluation statistics: an image folder
# (export LSUN's LMDB with the original repository's datasets/lsun_bedroom.py
# or any exporter), center-cropped and resized to 256x256. Cat configs point
# data_root at data/lsun/cat_256.
test_pipeline = [
    dict(type='LoadImageFromFile', key='gt'),
    dict(type='CenterCropLongEdge', keys='gt'),
    dict(type='Resize', scale=(256, 256), keys='gt', backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=16,
    num_workers=4,
    dataset=dict(
        type='BasicImageDataset',
        data_root='data/lsun/bedroom_256',
        data_prefix=dict(gt=''),
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
    persistent_workers=True)
