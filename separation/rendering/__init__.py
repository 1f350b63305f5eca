"""Separated stems into the files a user gets: the first render and key/tempo/guide renders."""
