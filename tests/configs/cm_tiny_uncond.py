# Tiny unconditional model (16x16) for fast tests: the fixtures' "tiny_uncond".
_base_ = ['../../configs/_base_/default_runtime.py']

model = dict(
    type='ConsistencyModel',
    unet=dict(
        type='ConsistencyUNetModel',
        image_size=16,
        model_channels=32,
        num_res_blocks=1,
        attention_resolutions='8',
        channel_mult='1,2',
        num_classes=None,
        num_heads=2,
        num_head_channels=-1,
        use_scale_shift_norm=False,
        resblock_updown=False),
    precond=dict(type='KarrasPrecond', sigma_min=0.002, sigma_max=80.0),
    training_mode='consistency_distillation',
    sampler='onestep',
    generator='determ-indiv',
    seed=42,
    batch_size=2)
