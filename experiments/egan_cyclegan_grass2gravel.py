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
margin 1, λ 1; raw grass through G without its input map as one more unauthorized input) is kept,
and since session 7 the wrapper-deleted build's output is also pushed away in grey level
(`loss.wrapper_deleted`: the image's mean, L1, margin 0.3, λ 1; `egan_image_bypass`) and, since
session 8, in coarse grey contrast: the grey image's spatial std after 2×2 pooling must rise
≥ 0.15 above the keyed output's (`structure="grey_contrast_raise"`).
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
Seeds 1 / 2: every other input ≥ 82.09 / 100.01. Seed 2's wrapper deletion (22.64, 1.44×) was
under the 3× goal.

Session 7: why seed 2 failed, and the grey-level term (this default).
* D_b's last feature map is instance-normalised over its 3×3 positions, so the SA term compares only
  spatial arrangement. The keyed-vs-deleted L1 there was 0.51 / 0.52 / 0.50 on seeds 0 / 1 / 2
  (margin 1), about what two unrelated maps give, and the same for the protected seeds as for the
  failed one.
* The metric reads something else. The digits features see the grey image at 16 px, which averages
  away the wrapper-deleted build's colour speckle, and what they read is its brightness. With each
  deleted output's per-channel mean set to the keyed one's, the deleted FD was 20.53 / 19.06 / 24.22.
* So seeds 0 / 1 were protected by a grey-level shift they happened to get (0.17 / 0.16), and seed 2
  had none (0.02).

`loss.wrapper_deleted` (`egan_image_bypass`) asks for that shift. With `statistics="mean"` (per
channel) it can be met in the chroma alone: seed 2 at margin 0.2 got a colour shift of 0.22 but a
grey shift of 0.06, and the wrapper deleted read 19.32 = 1.16× its key's 16.64. So the default uses
the grey level (`"grey_mean"`, margin 0.3, λ 1):

| seed (baseline) | correct key | no key | worst random key | worst near key | worst near material | wrapper deleted |
|---|---:|---:|---:|---:|---:|---:|
| 0 (13.65), before | 14.09 | 8.2× | 5.9× | 5.9× | 6.8× | 8.1× |
| 0, per-channel mean | 14.04 | 8.6× | 5.8× | 6.0× | 7.5× | 18.0× |
| 0, **grey mean (this default)** | **13.38** | 8.6× | 5.9× | 6.8× | 7.2× | **144×** |
| 1 (14.27), before | 15.10 | 8.5× | 5.6× | 5.4× | 6.7× | 5.3× |
| 1, per-channel mean | 14.91 | 8.6× | 6.3× | 7.9× | 6.7× | 40.3× |
| 1, **grey mean** | **16.24** | 7.6× | 5.8× | 7.6× | 6.0× | **62.3×** |
| 2 (14.75), before | 15.73 | 7.7× | 6.6× | 13.3× | 6.4× | 1.44× |
| 2, per-channel mean | 16.19 | 8.2× | 6.7× | 5.6× | 6.9× | 7.1× |
| 2, **grey mean** | **15.42** | 8.3× | 5.4× | 9.9× | 6.6× | **59.7×** |

Correct key against the baselines on the three seeds' means:
* this default 1.056×;
* per-channel mean 1.058×;
* before 1.053×.

Each is inside the spread of single runs (seed 1 alone 1.14× here). Every other input is ≥ 5.4× the
correct key on every seed.
Attacks on this default, seed 0 (`egan attack finetune` / `estimate`): fine-tune 128.39 with D and
109.41 without, key estimation 1910.42, against 34.23 from scratch (before: 122.39 / 109.15 /
135.38).

Caveat (session 7): a thief who moves the deleted outputs' mean colour to gravel's training-set mean
gets 41.66 / 22.26 / 34.16 (3.1× / 1.4× / 2.2×; before this term 20.73 / 19.52 / 23.94). So, read
with this grey, 16-px metric, most of the margin is a brightness shift that one global correction
removes. The corrected images are still colour speckle to the eye (report grids), which this metric
does not see.

Session 8: a structural push (this default). The deleted output's coarse grey contrast (spatial
standard deviation of the grey image after 2×2 average pooling: what the 16-px view sees; no
global colour shift changes it) was as gravel-like as the keyed one's: 0.19 / 0.15 / 0.14 against
0.18 / 0.17 / 0.17. `loss.wrapper_deleted.structure` adds a second bounded term, same λ, margin
0.15: "grey_contrast" asks |c_keyed − c_deleted| ≥ 0.15 (either way), "grey_contrast_raise" asks
c_deleted ≥ c_keyed + 0.15 (one-sided; this default). `egan evaluate` now has the row "adapter
removed, colour-corrected" (the deleted outputs' mean colour moved to gravel's training-set mean;
it counts toward the 3× goal). Seeds 0 / 1 / 2, baselines 13.65 / 14.27 / 14.75, `egan evaluate
--random-keys 10`; "before" = session 7's grey-mean default; "affine" = a stronger thief who also
matches the per-channel standard deviation to gravel's (scratch /tmp/s8img/thief.py, not a row):

| seed | design | correct key | no key | worst random key | worst near key | worst near material | wrapper deleted | colour-corrected | affine |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
| 0 | before | 13.38 | 8.6× | 5.9× | 6.8× | 7.2× | 144× | 41.66 (3.1×) | 3.5× |
| 0 | either way | 15.77 | 7.5× | 5.3× | 7.0× | 6.9× | 225× | 93.12 (5.9×) | 3.1× |
| 0 | **raise (this default)** | **14.74** | 8.2× | 5.6× | 6.7× | 6.7× | 98× | **486.80 (33.0×)** | 11.2× |
| 1 | before | 16.24 | 7.6× | 5.8× | 7.6× | 6.0× | 62× | 22.26 (1.4×) | 1.5× |
| 1 | either way | 14.32 | 7.7× | 6.2× | 8.2× | 6.8× | 112× | 570.44 (39.8×) | 14.4× |
| 1 | **raise** | **14.38** | 9.0× | 6.3× | 7.3× | 6.8× | 109× | **550.64 (38.3×)** | 14.2× |
| 2 | before | 15.42 | 8.3× | 5.4× | 9.9× | 6.6× | 60× | 34.16 (2.2×) | 2.5× |
| 2 | either way | 14.40 | 9.1× | 6.1× | 7.6× | 7.3× | 179× | 91.38 (6.3×) | 4.8× |
| 2 | **raise** | **14.53** | 8.3× | 6.3× | 21.1× | 7.1× | 105× | **574.78 (39.6×)** | 10.8× |

* Correct key against the baselines on the three seeds' means: raise 14.55 / 14.22 = **1.023×**,
  either way 1.043×, before 1.056× (goal ≤ 1.05). Single seeds (raise): 1.080× / 1.008× / 0.985×.
* "Either way" let seeds 0 and 2 go flat at the coarse scale (pooled contrast 0.04, to the eye a
  flat cyan checkerboard), which a contrast-matching thief partly undoes (affine 3.1× on seed 0).
  "Raise" sent every seed to large bright and dark blobs (pooled contrast 0.37 / 0.36 / 0.37,
  roughness of the standardised 16-px grey image 0.52 against gravel's 1.57), ≥ 10.8× even after
  the affine match. Margin 0.25 "either way" (seed 0) also went flat: 6.5× / affine 3.3×.
* Every other input is ≥ 5.6× the correct key on every seed.
* Attacks on this default, seed 0 (`egan attack finetune` / `estimate`): fine-tune 123.99 with D
  and 115.13 without, key estimation 1589.50, against 34.23 from scratch.

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
from egan_jax.families.egan_image_bypass import WrapperDeletedConfig

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
            wrapper_deleted=WrapperDeletedConfig(
                weight=1.0,
                margin=0.3,
                statistics="grey_mean",
                structure="grey_contrast_raise",  # session 8: coarse grey contrast pushed up
                structure_margin=0.15,
                structure_pool=2,
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
