"""Network rules shared by sources and delivery (neither may import the other)."""
