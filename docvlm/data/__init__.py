"""Data files shipped with docvlm: the weights of the learned extraction ranker."""
