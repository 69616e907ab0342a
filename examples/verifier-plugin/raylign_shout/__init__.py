"""An example raylign verifier plugin (see ``raylign_shout.shout``)."""
