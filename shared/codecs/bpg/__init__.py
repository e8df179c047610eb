"""BPG: HEVC intra pictures in Fabrice Bellard's compact container (bpg_spec 0.9.5+)."""
