"""EncryIP: classifiers whose outputs are public-key-encrypted labels (Mu et al., AAAI 2024).

The paper (arXiv 2312.12049) names its scheme CS-lite = (Gen, Enc, Dec, Fake), Cramer-Shoup "lite"
with a Fake algorithm; only its abstract and a figure caption are public. What follows the public
record: CS-lite's Gen/Enc/Dec, many secret keys for one public key through the trapdoor
``t = log_g1 g2``, Fake ciphertexts with ``v != u^t``. What is ours (no public detail to follow):

- the group: RFC 3526's 2048-bit MODP group, subgroup of quadratic residues (:mod:`.group`);
- class ids as group elements: an element's class is ``SHA-256(domain || element) mod K``; an honest
  label is a uniform element of its class, so every element decodes to a class and a single user
  cannot tell a Fake's plaintext from an honest one;
- all issued keys share the owner's ``(a, b)`` so that Fakes pass every key's validity check
  (consequences in :mod:`.cslite`);
- the codebook (``K * per_class`` honest entries plus Fakes, shuffled) and the tracing test
  (binomial threshold with a bounded false-accusation rate) (:mod:`.codebook`);
- the registry and key files (:mod:`.registry`);
- learning: an N-way head trained on randomized codebook indices, trigger inputs (keyed noise
  images derived from the owner's secret, :mod:`.derive`) trained to output the Fake entries
  (``egan_jax.families.encryip``); decoding and black-box tracing (:mod:`.pipeline`); attacks
  (:mod:`.robustness`) and the report (:mod:`.report`); publishing and user-side decryption
  (:mod:`.workdir`).

What the scheme cannot stop: anyone with a few labelled examples can learn the index -> class map of
a codebook (the labels are encrypted, the model's behaviour is not); two colluding users recover
``t`` and can then spot the Fakes and mint untraceable keys; a pirate who notices which indices never
fire on natural inputs can blank the Fake entries, and one who detects the noise triggers can refuse
to answer them. Revoking a user cannot stop their key from
decrypting codebooks already published under the same public key.
"""

from egan_jax.encryip.codebook import (
    Codebook,
    CodebookSecret,
    TraceResult,
    binomial_tail,
    build_codebook,
    class_probabilities,
    decrypt_codebook,
    fake_classes,
    randomized_targets,
    trace,
)
from egan_jax.encryip.cslite import (
    Ciphertext,
    DecryptionKey,
    Encryptor,
    OwnerKey,
    PublicKey,
    decrypt,
    decrypt_class,
    encrypt,
    fake,
    issue_key,
    keygen,
)
from egan_jax.encryip.group import RFC3526_2048, TEST_GROUP_64, Group
from egan_jax.encryip.registry import Registry, UserRecord, load_user_key, save_user_key

__all__ = [
    "RFC3526_2048",
    "TEST_GROUP_64",
    "Ciphertext",
    "Codebook",
    "CodebookSecret",
    "DecryptionKey",
    "Encryptor",
    "Group",
    "OwnerKey",
    "PublicKey",
    "Registry",
    "TraceResult",
    "UserRecord",
    "binomial_tail",
    "build_codebook",
    "class_probabilities",
    "decrypt",
    "decrypt_class",
    "decrypt_codebook",
    "encrypt",
    "fake",
    "fake_classes",
    "issue_key",
    "keygen",
    "load_user_key",
    "randomized_targets",
    "save_user_key",
    "trace",
]
