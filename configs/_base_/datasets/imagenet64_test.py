# ImageNet-64 real images for the evaluation statistics (MMagic's ImageNet
# dataset: data/imagenet/train/<wnid>/*.JPEG listed in meta/train.txt),
# center-cropped and resized to 64x64.
test_pipeline = [
    dict(type='LoadImageFromFile', key='gt'),
    dict(type='CenterCropLongEdge', keys='gt'),
    dict(type='Resize', scale=(64, 64), keys='gt', backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(
        type='ImageNet',
        data_root='data/imagenet/',
        ann_file='meta/train.txt',
        data_prefix='train',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
    persistent_workers=True)
