# Architecture of the released LSUN Bedroom-256 / Cat-256 checkpoints
# (unconditional ADM without scale-shift norm): the original scripts/launch.sh.
_base_ = [
    '../../_base_/cm_train_runtime.py', '../../_base_/gen_eval.py',
    '../../_base_/datasets/lsun256_test.py', '../../_base_/datasets/lsun256_train.py',
]

model = dict(
    type='ConsistencyModel',
    unet=dict(
        type='ConsistencyUNetModel',
        image_size=256,
        in_channels=3,
        model_channels=256,
        num_res_blocks=2,
        attention_resolutions='32,16,8',
        channel_mult='1,1,2,2,4,4',
        num_classes=None,
        num_heads=4,
        num_head_channels=64,
        use_scale_shift_norm=False,
        resblock_updown=True,
        learn_sigma=False,
        dropout=0.0),
    precond=dict(type='KarrasPrecond', sigma_data=0.5, sigma_min=0.002, sigma_max=80.0,
                 rho=7.0, weight_schedule='uniform'),
    training_mode='consistency_distillation',
    model_path=None,
    sampler='onestep',
    steps=40,
    ts=None,
    # one generator per sample: 'determ' would draw every sample's 256x256
    # noise at each step
    generator='determ-indiv',
    seed=42,
    batch_size=4,
    clip_denoised=True,
    data_preprocessor=dict(type='DataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3))
