# ImageNet-64 training images (class labels from the folder names under
# data/imagenet/train/), center-cropped, resized to 64x64, randomly flipped,
# as the original image_datasets.py.
train_pipeline = [
    dict(type='LoadImageFromFile', key='gt', channel_order='rgb'),
    dict(type='CenterCropLongEdge', keys='gt'),
    dict(type='Resize', scale=(64, 64), keys='gt', backend='pillow', interpolation='bicubic'),
    dict(type='Flip', keys='gt', flip_ratio=0.5, direction='horizontal'),
    dict(type='PackInputs', keys=['gt']),
]
train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageNet', data_root='data/imagenet/', ann_file='',
                 data_prefix='train', pipeline=train_pipeline))
