"""Layer 4: Graph -> Graph transforms (autodiff, passes)."""
