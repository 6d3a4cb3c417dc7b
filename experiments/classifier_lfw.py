"""Key-protected classifier on scikit-image's lfw_subset (offline): faces vs non-faces, 32×32 grey.

A binary task on 160 training / 40 test images (stratified). ConvMixer with patch size = block
size 4, shuffle + negative/positive: the evaluation also shows the unlocked model and the baseline
locked without retraining.

    egan keygen --out keys/classifier.key
    egan train experiments/classifier_lfw.py --workdir runs/classifier_lfw \\
        --set model.transform.key_file=keys/classifier.key
"""

from egan_jax.config import (
    CheckpointConfig,
    Config,
    DataConfig,
    EvalConfig,
    LogConfig,
    OptimConfig,
    TrainConfig,
)
from egan_jax.families.classifier import LossConfig, ModelConfig, TransformConfig


def get_config() -> Config:
    return Config(
        family="classifier",
        seed=0,
        model=ModelConfig(
            arch="convmixer",
            width=32,
            depth=4,
            patch_size=4,
            baseline=True,
            transform=TransformConfig(block=4, steps=("shuffle", "np"), key_file=None),
        ),
        loss=LossConfig(optimizer="adam", random_keys=10, near_miss_keys=3),
        data=DataConfig(name="lfw", split="train", image_size=32, channels=1),
        train=TrainConfig(steps=300, batch_size=32),
        optim=OptimConfig(learning_rate=1e-3, b1=0.9, b2=0.999, schedule="linear_decay"),
        log=LogConfig(every=50, sample_every=0, num_samples=16),
        checkpoint=CheckpointConfig(every=100, max_to_keep=2),
        eval=EvalConfig(every=0),
    )
