"""Layers of the audio codecs: the SEANet encoder, the Vocos backbone and the iSTFT head."""
