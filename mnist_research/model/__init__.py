"""Model families and their building blocks."""
