"""A project's workspace data in the vault: secrets, prepared views, synthetic twin, destruction."""
