"""The screens of the advtui terminal app, one module (and one .tcss file) each."""
