"""The snapshot room: ``server`` (serves a consistent copy of the store to a
joiner), ``client`` (fetches one) and ``swap`` (installs it in place of the data
directory)."""
