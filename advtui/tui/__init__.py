"""The terminal app (Textual): screens and widgets over the headless core; never imports torch."""
