"""EGAN-protected CycleGAN grass -> gravel on the bundled textures (offline), 32-px crops, batch 1.

The protected direction is A -> B (grass -> gravel). The key enters G_ab twice, each time as a
*lock* (DCGAN's `feature_lock`: a keyed signed permutation after a secret offset, the model storing
γ = a_k(0) and subtracting it):
* input lock (`model.input_lock`, `egan_jax.families.egan_image_lock`): the owner feeds
  T_k(x + β_k) (block 4, shuffle + negative/positive); G_ab subtracts γ, then applies the exact
  inverse T_k⁻¹ (`model.adapter="key_inverse"`, derived from the key when the owner builds the
  model and never stored; until session 6 a learned per-block input map);
* feature lock (`model.feature_key` + `model.feature_lock`): G_ab's head feature map goes through
  T'_k(h + β'_k) − γ';
* deep lock (`model.deep_lock`, every site; `egan_jax.deep_lock`): a key permutation + sign flip of
  the channels after both down-samplers, inside each residual branch and after both up-samplers,
  from the key at build time, never stored.
The authorized path sees exactly the unlocked design's inputs; every other input — no key, other
keys, one flipped secret bit, one transposition or flipped sign of either material — leaves a
residual of ≥ 16 that the network never saw. The self-adversarial term (L1 on D_b's last feature map,
margin 1, λ 1; raw grass through G without its input map as one more unauthorized input) is kept.
G_ba stays unprotected.

Why (seed 0, 1200 steps, digits-feature Fréchet distance to real gravel; unprotected baseline
13.65; "×" = / correct key; `egan evaluate` with 10 random keys, 2 near keys, 2 near materials):

| design | correct key | no key | worst random key | worst near miss | input map removed |
|---|---:|---:|---:|---:|---:|
| input transform only (`_input_only`, before) | 14.56 | 1.08× | 0.94× | 0.99× | 1.16× |
| + feature key (`_feature`) | 16.63 | 1.09× | 1.54× | 0.97× | 1.02× |
| + feature lock (`_lock`) | 16.29 | 7.8× | 7.2× | 0.99× (input) | 1.24× |
| + input lock (default until session 6) | **13.08** | **8.7×** | **8.6×** | **8.2×** | 1.35× |
| the same, seed 1 (its baseline 14.27) | 15.65 | 7.6× | 6.9× | 6.0× | 1.72× |

Correct key vs baseline: 0.96× (seed 0), 1.10× (seed 1), 1.03× on the two seeds' means.

Not met then: a white-box thief who deletes the whole wrapper (input map and both locks) and feeds raw
grass gets 17.72 / 26.97 (1.35× / 1.72×, seeds 0 / 1); the SA term on output pixels instead (seed 0)
gave 15.90 there (1.19×; key 13.36), so D features stay. Fine-tuning the stolen model without the key
(seed 0): 131.99 with D, 116.85 without, vs 34.23 from scratch (stealing does not help); key
estimation 113.81; best of 20 random keys 112.96. Sizes as `experiments/cyclegan_grass2gravel.py`
(width 32, 6 blocks), 1200 steps; the unprotected baseline is
`experiments/egan_cyclegan_grass2gravel_baseline.py`.

Session 6: the exact inverse + deep lock (this default) against the learned map, side by side
(digits-feature FD; baselines 13.65 / 14.27 / 14.75 for seeds 0 / 1 / 2; learned-map rows are
session 5's runs; `egan evaluate --random-keys 10`, each key row with its holder's own inverse
and deep lock; `egan attack`):

| design | correct key, seeds 0 / 1 / 2 | wrapper deleted (white box; goal ≥ 3× key) |
|---|---:|---:|
| learned map, no deep lock (default until session 6) | 13.08 / 15.65 / 17.01 (1.07× means) | 1.35× / 1.72× / 1.04× |
| learned map + deep lock (`_deep`) | 13.60 / 18.36 / 17.67 (1.16× means) | 3.4× / 14.6× / 1.62× |
| **exact inverse + deep lock (this default)** | **14.09 / 15.10 / 15.73 (1.05× means)** | **8.1× / 5.3× / 1.44×** |

Exact inverse + deep lock, seed 0: no key 115.98, worst random key 83.36 (5.9×), worst near miss
83.72; key estimation 135.38, fine-tune 122.39 with D and 109.15 without, vs 34.23 from scratch.
Seeds 1 / 2: every other input ≥ 82.09 / 100.01. Seed 2's wrapper deletion (22.64, 1.44×) is still
under the 3× goal.

`egan train experiments/egan_cyclegan_grass2gravel.py --workdir runs/egan_cyclegan`
`egan evaluate --workdir runs/egan_cyclegan --baseline runs/cyclegan_baseline`
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
from egan_jax.families.egan_cyclegan import LossConfig, ModelConfig
from egan_jax.families.egan_image import SelfAdversarialConfig, UnauthorizedConfig

# every site of models.cyclegan.generator_site_channels (6 blocks)
SITES = ("down1", "down2", "block1", "block2", "block3", "block4", "block5", "block6", "up1", "up2")


def get_config() -> Config:
    return Config(
        family="egan_cyclegan",
        seed=0,
        model=ModelConfig(
            width=32,
            num_blocks=6,
            discriminator_width=32,
            upsample="vjp",
            key_file=None,
            block=4,
            steps=("shuffle", "np"),
            adapter="key_inverse",  # the exact T_k⁻¹ (True: the learned map)
            adapter_lr_scale=25.0,  # the learned map's (ablations)
            adapter_bypass=True,
            feature_key=True,
            feature_lock=True,
            input_lock=True,
            deep_lock=SITES,
        ),  # fmt: skip
        loss=LossConfig(
            cycle_weight=10.0,
            identity_weight=0.5,
            pool_size=50,
            self_adversarial=SelfAdversarialConfig(
                weight=1.0,
                divergence="l1",
                margin=1.0,
                features="discriminator",
                discriminator_feature="conv4",
            ),
            unauthorized=UnauthorizedConfig(
                fraction=1.0, random_keys=4, near_keys=2, near_materials=2
            ),
        ),
        data=DataConfig(name="grass2gravel", split="train", image_size=32, channels=3),
        train=TrainConfig(steps=1200, batch_size=1),
        optim=OptimConfig(
            learning_rate=2e-4, b1=0.5, b2=0.999, schedule="linear_decay", decay_start=0.5
        ),
        log=LogConfig(every=50, sample_every=0, num_samples=16, tensorboard=False),
        checkpoint=CheckpointConfig(every=400, max_to_keep=2),
        eval=EvalConfig(every=0),
    )
