"""A tiny shop whose orders send a signal; its receivers live in shop.signals."""
