# Tiny SCD run on 64 digits for tests (dropout on: the shared masks are
# part of what resumes exactly); the teacher path is set by the test.
_base_ = ['../../configs/consistency_models/consistency_models_scd_digits-onestep-16x16.py']

model = dict(
    unet=dict(model_channels=32, num_res_blocks=1, attention_resolutions='8', dropout=0.1),
    model_path=None,
    batch_size=8,
    train_cfg=dict(teacher=dict(path='TEACHER', dropout=0.0), tangent_warmup=4))
train_dataloader = dict(batch_size=8, dataset=dict(indices=64))
train_cfg = dict(max_iters=6)
optim_wrapper = dict(optimizer=dict(type='RAdam', lr=1e-3))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False, max_keep_ckpts=5))
