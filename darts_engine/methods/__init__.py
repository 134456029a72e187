"""DARTS variants, one file each: what a method changes around the update rule."""
