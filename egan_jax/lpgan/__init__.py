"""LP-GAN: training and synthesis of a small DCGAN by two servers on secret-shared data.

`layers` (secure layers, forward and backward, with plaintext twins), `model` (the secure DCGAN as
lists of layers), `train` (the secure training step, the plaintext reference step, the data owner's
driver), `server` (a server process: TCP to the peer server and to the data owner).
"""
