# Tiny model + MMagic's FID loop over a small image folder, for testing
# tools/test.py end to end. The test sets data_root and inception_path.
_base_ = ['./cm_tiny_uncond.py']

test_cfg = dict(type='MultiTestLoop')
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(
        type='BasicImageDataset',
        data_root=None,
        data_prefix=dict(gt=''),
        pipeline=[
            dict(type='LoadImageFromFile', key='gt'),
            dict(type='Resize', scale=(16, 16), keys='gt'),
            dict(type='PackInputs'),
        ]),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(
    type='Evaluator',
    metrics=[
        dict(
            type='FrechetInceptionDistance',
            prefix='FID-8',
            fake_nums=8,
            real_nums=8,
            inception_style='StyleGAN',
            inception_path=None,
            sample_model='orig'),
    ])
