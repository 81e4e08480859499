"""Learning paradigms (SL, CL, MIM, DM) behind one interface, and the one training loop that serves them all."""
