"""The online loop: generate, judge, train with CUT, round after round."""
