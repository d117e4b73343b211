"""Text encoders (frozen HF, TF-IDF, concatenation), the trainable HF encoder, the cache.

Heavy libraries (transformers) load only when an encoder is used, never at import time.
"""

from routerbench.encoders.base import Encoder, build_encoder, encoder_from_state, identity_hash

__all__ = ["Encoder", "build_encoder", "encoder_from_state", "identity_hash"]
