"""Files metarl writes and reads: run folders, metrics, learned components."""
