"""Level samplers: which level each environment slot plays next."""
