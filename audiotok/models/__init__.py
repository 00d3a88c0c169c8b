"""Audio tokenizers."""
