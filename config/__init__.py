"""Configuration files (YAML tables); this marker only makes them loadable as package resources."""
