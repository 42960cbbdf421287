# Tiny CD run for tests: the teacher path is set by the test.
_base_ = ['../../configs/consistency_models/consistency_models_cd_digits-onestep-16x16.py']

model = dict(
    unet=dict(model_channels=32, num_res_blocks=1, attention_resolutions='8', dropout=0.0),
    model_path=None,
    batch_size=8,
    train_cfg=dict(
        schedule=dict(type='original', target_ema_mode='adaptive', scale_mode='progressive',
                      start_ema=0.95, start_scales=2, end_scales=20, total_steps=8),
        teacher=dict(path='TEACHER', dropout=0.0)))
train_dataloader = dict(batch_size=8, dataset=dict(indices=64))
train_cfg = dict(max_iters=6)
optim_wrapper = dict(optimizer=dict(type='RAdam', lr=1e-3))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False, max_keep_ckpts=5))
