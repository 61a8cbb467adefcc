"""Domain-free building blocks shared by every service of the platform."""
