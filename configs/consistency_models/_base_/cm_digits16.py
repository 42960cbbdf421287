# Class-conditional digits (scikit-learn's 8x8 digits, bicubic-upsampled to
# 16x16, 3 channels): a 1.15M-parameter ADM UNet that trains on 2 CPU cores.
# Variants set training_mode, train_cfg and the sampler.
_base_ = ['../../_base_/default_runtime.py']

model = dict(
    type='ConsistencyModel',
    unet=dict(
        type='ConsistencyUNetModel',
        image_size=16,
        in_channels=3,
        model_channels=32,
        num_res_blocks=2,
        attention_resolutions='8',
        channel_mult='1,2',
        num_classes=10,
        num_heads=4,
        num_head_channels=32,
        use_scale_shift_norm=True,
        resblock_updown=True,
        dropout=0.1),
    precond=dict(type='KarrasPrecond', sigma_data=0.5, sigma_min=0.002, sigma_max=80.0,
                 rho=7.0, weight_schedule='uniform'),
    model_path=None,
    sampler='onestep',
    steps=40,
    generator='determ',
    seed=42,
    batch_size=64,
    sample_ema=0.999,
    data_preprocessor=dict(type='DataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3))

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    dataset=dict(
        type='DigitsDataset', image_size=16, split='train',
        pipeline=[dict(type='PackInputs', keys=['gt'])]),
    sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6000)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2e-4))
# constant LR; an explicit no-op schedule, so that mmengine's CheckpointHook and
# Runner.resume have one to save and restore (else they warn every run)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
# evaluation (tools/test.py, MMagic's too): 1,000 samples scored by the shipped
# digits classifier, offline (mmagic_cm.evaluation.digits_metric.DigitsMetric)
test_cfg = dict(type='MultiTestLoop')
test_dataloader = dict(
    batch_size=100,
    num_workers=0,
    dataset=dict(
        type='DigitsDataset', image_size=16, split='test',
        pipeline=[dict(type='PackInputs', keys=['gt'])]),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(
    type='Evaluator', metrics=[dict(type='DigitsMetric', fake_nums=1000, prefix='digits-1k')])
# DigitsMetric imports MMagic's metrics (seconds): only configs that use it load it
custom_imports = dict(imports=['mmagic_cm', 'mmagic_cm.evaluation.digits_metric'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='ConsistencyEMAHook'), dict(type='WeightsOnlyCheckpointHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False, max_keep_ckpts=2))
randomness = dict(seed=0)
