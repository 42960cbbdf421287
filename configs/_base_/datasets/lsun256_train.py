# LSUN-256 training images from an image folder (export the LMDB first, e.g.
# with the original repository's datasets/lsun_bedroom.py), center-cropped,
# resized to 256x256 and randomly flipped. Cat configs set data_root.
train_pipeline = [
    dict(type='LoadImageFromFile', key='gt', channel_order='rgb'),
    dict(type='CenterCropLongEdge', keys='gt'),
    dict(type='Resize', scale=(256, 256), keys='gt', backend='pillow', interpolation='bicubic'),
    dict(type='Flip', keys='gt', flip_ratio=0.5, direction='horizontal'),
    dict(type='PackInputs', keys=['gt']),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='BasicImageDataset', data_root='data/lsun/bedroom_256',
                 data_prefix=dict(gt=''), pipeline=train_pipeline))
