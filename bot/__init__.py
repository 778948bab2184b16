"""outagebot: keeps chat communities informed while the services they depend on are down."""

__version__ = "0.1.0"
