"""How a search trains: data streams, update rules, the built search (setup), checkpoints, presets."""
