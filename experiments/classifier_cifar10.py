"""Key-protected ResNet-18 on CIFAR-10 (the paper's setting: block size 4), through tfds.

Needs CIFAR-10 prepared in array_record format (see egan_jax.data's tfds hint) and, realistically,
a GPU: 40k steps of batch 128 (~100 epochs) with SGD 0.1, momentum 0.9, weight decay 5e-4 and a
linear decay. The evaluation table: baseline, correct key, plain images, 10 random keys, near-miss
keys.

    egan keygen --out keys/classifier.key
    egan train experiments/classifier_cifar10.py --workdir runs/classifier_cifar10 \\
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
            arch="resnet18",
            width=64,
            baseline=True,
            transform=TransformConfig(block=4, steps=("shuffle", "np", "ffx"), key_file=None),
        ),
        loss=LossConfig(
            optimizer="sgd",
            momentum=0.9,
            weight_decay=5e-4,
            test_split="test",
            random_keys=10,
            near_miss_keys=3,
            eval_batch_size=500,
        ),
        data=DataConfig(name="tfds:cifar10", split="train", image_size=32, channels=3),
        train=TrainConfig(steps=40_000, batch_size=128),
        optim=OptimConfig(learning_rate=0.1, schedule="linear_decay", decay_start=0.0),
        log=LogConfig(every=100, sample_every=5000, num_samples=64),
        checkpoint=CheckpointConfig(every=2000, max_to_keep=3),
        eval=EvalConfig(every=10_000),
    )
